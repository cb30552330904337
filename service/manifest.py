"""The manifest's schema, the contract models.manifest writes and the front reads, and the
artifact checked against it.

`python -m service.manifest FOLDER` verifies an artifact as the image build does, before it is shipped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.artifact import (
    MANIFEST,
    MODEL,
    MULTI_LABEL,
    PRIMARY_GRAPH,
    REQUIRED_FILES,
    SINGLE_LABEL,
    Artifact,
    ArtifactError,
    ProblemType,
    read_artifact,
)


class Manifest(BaseModel):
    """manifest.json: the contract models.manifest writes and the service reads, checked on both
    sides. The build's reports (data, training, fusions, gates...) ride along as extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    labels: tuple[str, ...] = Field(min_length=2, description="in logit order")
    max_sequence_length: int = Field(ge=2)
    files: dict[str, str] = Field(description="file name -> SHA-256")
    source: dict[str, Any] | None = None
    quantization: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    latency_single_thread: dict[str, Any] | None = None
    distillation: dict[str, Any] | None = None
    build_date: str | None = None
    label_mix: dict[str, float] | None = Field(
        None, description="each label's share of the validation split: the served mix is compared with it"
    )
    problem_type: ProblemType = SINGLE_LABEL
    thresholds: dict[str, float] | None = Field(
        None, description="multi-label: the score from which each label is answered, chosen on validation"
    )
    graphs: dict[str, str] | None = Field(
        None,
        description="int8 graphs that passed the same gates, name -> ONNX file (listed in `files`); "
        f"absent: only {PRIMARY_GRAPH!r}, {MODEL}",
    )

    @field_validator("labels")
    @classmethod
    def _distinct(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(labels)) != len(labels) or not all(labels):
            raise ValueError("labels must be distinct, non-empty strings")
        return labels

    @model_validator(mode="after")
    def _per_label_values(self) -> Manifest:
        for field in ("label_mix", "thresholds"):
            values = getattr(self, field)
            if values is not None and (
                set(values) != set(self.labels) or not all(0 <= v <= 1 for v in values.values())
            ):
                raise ValueError(f"{field} must give each label a value between 0 and 1")
        if (self.thresholds is not None) != (self.problem_type == MULTI_LABEL):
            raise ValueError("thresholds are given for a multi-label model, and only for one")
        return self

    @model_validator(mode="after")
    def _graphs_listed(self) -> Manifest:
        if self.graphs is not None and (
            self.graphs.get(PRIMARY_GRAPH) != MODEL or not set(self.graphs.values()) <= set(self.files)
        ):
            raise ValueError(f"graphs must name {PRIMARY_GRAPH!r} {MODEL}, and only files it lists")
        return self

    @field_validator("files")
    @classmethod
    def _model_and_tokenizer(cls, files: dict[str, str]) -> dict[str, str]:
        missing = [f for f in REQUIRED_FILES if f not in files]
        if missing:
            raise ValueError(f"does not list {missing}")
        return files

    @classmethod
    def parse(cls, text: str | bytes) -> Manifest:
        """Strictly from JSON (no "3" for 3, no string for a list); raises ValueError saying where."""
        try:
            return cls.model_validate_json(text, strict=True)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors()
            )
            raise ValueError(problems) from None


def load_artifact(folder: Path) -> Artifact:
    """Load the manifest, check it against the schema, and check the files it lists exist and
    match their SHA-256 and its version."""
    return read_artifact(folder, Manifest.parse)


def main(argv: Sequence[str] | None = None) -> int:
    """Verify an artifact folder before shipping it: its manifest, hashes and version, and no file
    it does not list. Exit 0 and print its name and version, or 1 and say what is wrong."""
    parser = argparse.ArgumentParser(prog="python -m service.manifest", description=main.__doc__)
    parser.add_argument("folder", type=Path)
    folder = parser.parse_args(argv).folder
    try:
        artifact = load_artifact(folder)
        listed = {MANIFEST, *artifact.files}
        unlisted = sorted(p.name for p in folder.iterdir() if p.name not in listed)
        if unlisted:
            raise ArtifactError(f"{folder} holds files its {MANIFEST} does not list: {', '.join(unlisted)}")
    except ArtifactError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{artifact.name} {artifact.version}: manifest, SHA-256 of each file and version verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
