"""Read and verify the model artifact folder written by models.build.

`python -m service.artifact FOLDER` verifies one as the image build does, before it is shipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MANIFEST = "manifest.json"
# Hugging Face's names (a model config's `problem_type`): labels that exclude each other (softmax,
# one answer) or not (a sigmoid per label, each answered at or above its own threshold).
ProblemType = Literal["single_label_classification", "multi_label_classification"]
SINGLE_LABEL: ProblemType = "single_label_classification"
MULTI_LABEL: ProblemType = "multi_label_classification"
# Where `make model` writes the default model and the service looks for it.
DEFAULT_MODEL_DIR = Path("artifacts/sentiment")
TOKENIZER = "tokenizer.json"
# The graph in model.onnx: ORT's transformer optimizer fused it (attention, layer norms) before
# int8. An artifact may carry others that passed the same gates (`graphs`); each node serves the
# one its CPU runs fastest (service.model.graphs).
PRIMARY_GRAPH = "fused"
UNFUSED_GRAPH = "unfused"  # the raw export with its MatMuls quantized: ORT fuses it at load time
AUTO_GRAPH = "auto"  # TEXTCLF_MODEL_GRAPH's default: serve the graph timed fastest


def graph_files(graph: str) -> tuple[str, str]:
    """An int8 graph's ONNX file and weights file in an artifact: model.onnx and model.weights for
    the primary graph, model.NAME.onnx and model.NAME.weights for another."""
    stem = "model" if graph == PRIMARY_GRAPH else f"model.{graph}"
    return f"{stem}.onnx", f"{stem}.weights"


MODEL = graph_files(PRIMARY_GRAPH)[0]
REQUIRED_FILES = (MODEL, TOKENIZER)


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


class ArtifactError(Exception):
    """The artifact folder is missing, incomplete or corrupt; the message says how to fix it."""


@dataclass(frozen=True)
class Artifact:
    """A verified artifact: where its files are and what its manifest says."""

    folder: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def labels(self) -> tuple[str, ...]:
        return self.manifest.labels

    @property
    def max_sequence_length(self) -> int:
        return self.manifest.max_sequence_length

    @property
    def multi_label(self) -> bool:
        """Whether its labels are scored each on its own (sigmoid) and answered at thresholds."""
        return self.manifest.problem_type == MULTI_LABEL

    @property
    def thresholds(self) -> tuple[float, ...] | None:
        """A multi-label model's thresholds in label order; None for a single-label one."""
        given = self.manifest.thresholds
        return None if given is None else tuple(given[label] for label in self.labels)

    @property
    def model_path(self) -> Path:
        """The primary (fused) int8 graph."""
        return self.folder / MODEL

    @property
    def graphs(self) -> dict[str, Path]:
        """Each int8 graph it carries by name, the primary first."""
        given = self.manifest.graphs or {PRIMARY_GRAPH: MODEL}
        return {PRIMARY_GRAPH: self.model_path} | {name: self.folder / file for name, file in given.items()}

    @property
    def tokenizer_path(self) -> Path:
        return self.folder / TOKENIZER

    def has_graph(self, graph: str) -> bool:
        """Whether `graph` (a TEXTCLF_MODEL_GRAPH value) names one of its graphs, or is auto."""
        return graph == AUTO_GRAPH or graph in self.graphs

    def times_graphs(self, graph: str, trial_seconds: float) -> bool:
        """Whether the graph to serve is chosen by timing: `graph` is auto, there is more than one,
        and there is time to time them."""
        return graph == AUTO_GRAPH and len(self.graphs) > 1 and trial_seconds > 0

    def summary(self) -> dict[str, Any]:
        """What clients may see: identity, labels, limits, quality; no local paths."""
        keys = {
            "name",
            "version",
            "labels",
            "problem_type",
            "thresholds",
            "max_sequence_length",
            "source",
            "quantization",
            "accuracy",
            "latency_single_thread",
            "build_date",
        }
        return self.manifest.model_dump(include=keys, exclude_none=True, mode="json")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_version(
    files: Mapping[str, str],
    labels: Sequence[str],
    max_sequence_length: int,
    thresholds: Mapping[str, float] | None = None,
) -> str:
    """The version a manifest carries: a hash of all that decides the answers, so the same model
    files give the same version (and warm caches) wherever they are shipped. A multi-label model's
    thresholds are in it (new thresholds, new answers); a single-label model's version is as it was."""
    decided: list[object] = [dict(files), list(labels), max_sequence_length]
    if thresholds is not None:
        decided.append(dict(thresholds))
    return hashlib.sha256(json.dumps(decided, sort_keys=True).encode()).hexdigest()[:12]


def load_artifact(folder: Path) -> Artifact:
    """Load the manifest and check the files it lists exist and match their SHA-256 and its version."""
    hint = "build it with `make model` (or point TEXTCLF_MODEL_DIR at a folder written by models.build)"
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"no model artifact at {folder} ({MANIFEST} missing): {hint}")
    try:
        manifest = Manifest.parse(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path} is not a valid manifest ({err}): {hint}") from None
    for name, expected in manifest.files.items():
        file = folder / name
        if not file.is_file():
            raise ArtifactError(f"{file} is missing: {hint}")
        if sha256(file) != expected:
            raise ArtifactError(
                f"{file} does not match the SHA-256 in {MANIFEST} (corrupt or edited): {hint}"
            )
    expected = artifact_version(
        manifest.files, manifest.labels, manifest.max_sequence_length, manifest.thresholds
    )
    if manifest.version != expected:
        raise ArtifactError(
            f"{path} says version {manifest.version} but its files, labels and limit make "
            f"{expected} (edited by hand?): {hint}"
        )
    return Artifact(folder, manifest)


def main(argv: Sequence[str] | None = None) -> int:
    """Verify an artifact folder before shipping it: its manifest, hashes and version, and no file
    it does not list. Exit 0 and print its name and version, or 1 and say what is wrong."""
    parser = argparse.ArgumentParser(prog="python -m service.artifact", description=main.__doc__)
    parser.add_argument("folder", type=Path)
    folder = parser.parse_args(argv).folder
    try:
        artifact = load_artifact(folder)
        listed = {MANIFEST, *artifact.manifest.files}
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
