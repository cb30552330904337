"""The model artifact folder written by models.build: what it holds, read and verified.

Without pydantic: a model worker reads its artifact with this module alone (a worker holding
pydantic had 11 MiB more private memory: docs/model.md, Memory). The front checks the manifest
against its schema first (service.manifest.load_artifact); a worker, started by that front, checks
the files' hashes and the version they make, and its front refuses a worker whose version is not
its own.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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


class ArtifactError(Exception):
    """The artifact folder is missing, incomplete or corrupt; the message says how to fix it."""


HINT = "build it with `make model` (or point TEXTCLF_MODEL_DIR at a folder written by models.build)"


@dataclass(frozen=True)
class Artifact:
    """An artifact: where its files are and what its manifest says (`read_artifact` verifies one)."""

    folder: Path
    name: str
    version: str
    labels: tuple[str, ...]  # in logit order
    max_sequence_length: int
    problem_type: ProblemType
    thresholds: tuple[float, ...] | None  # a multi-label model's, in label order; None for a single-label one
    graphs: dict[str, Path]  # each int8 graph it carries by name, the primary first
    files: dict[str, str]  # file name -> SHA-256
    manifest: Mapping[str, Any]  # manifest.json as read: the build's reports ride along

    @classmethod
    def of(cls, folder: Path, manifest: Mapping[str, Any]) -> Artifact:
        """The artifact a manifest (checked, or trusted) describes in `folder`; KeyError, TypeError,
        ValueError or AttributeError where it lacks what the service reads."""
        labels = tuple(manifest["labels"])
        thresholds = manifest.get("thresholds")
        given = manifest.get("graphs") or {PRIMARY_GRAPH: MODEL}
        return cls(
            folder,
            str(manifest["name"]),
            str(manifest["version"]),
            labels,
            int(manifest["max_sequence_length"]),
            manifest.get("problem_type", SINGLE_LABEL),
            None if thresholds is None else tuple(float(thresholds[label]) for label in labels),
            {PRIMARY_GRAPH: folder / MODEL} | {name: folder / file for name, file in given.items()},
            dict(manifest["files"]),
            manifest,
        )

    @property
    def multi_label(self) -> bool:
        """Whether its labels are scored each on its own (sigmoid) and answered at thresholds."""
        return self.problem_type == MULTI_LABEL

    @property
    def model_path(self) -> Path:
        """The primary (fused) int8 graph."""
        return self.folder / MODEL

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
        """What clients may see: identity, labels, limits, quality; no local paths. A copy: what a
        caller adds to it never reaches the manifest the service loaded."""
        keys = (
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
        )
        shown = {key: self.manifest.get(key) for key in keys} | {"problem_type": self.problem_type}
        return copy.deepcopy({key: value for key, value in shown.items() if value is not None})

    def verify(self) -> None:
        """ArtifactError unless every file it lists is there with its SHA-256, it lists every file
        the service loads, and the files, labels, limit and thresholds make its version."""
        loaded = [
            path.relative_to(self.folder).as_posix() for path in (*self.graphs.values(), self.tokenizer_path)
        ]
        unlisted = [name for name in loaded if name not in self.files]
        if unlisted:
            # Only what is hashed is loaded: the version covers the files, not which graph is which.
            raise ArtifactError(f"{MANIFEST} does not list {', '.join(unlisted)} among its files: {HINT}")
        for name, expected in self.files.items():
            file = self.folder / name
            if not file.is_file():
                raise ArtifactError(f"{file} is missing: {HINT}")
            if sha256(file) != expected:
                raise ArtifactError(
                    f"{file} does not match the SHA-256 in {MANIFEST} (corrupt or edited): {HINT}"
                )
        expected = artifact_version(
            self.files, self.labels, self.max_sequence_length, self.manifest.get("thresholds")
        )
        if self.version != expected:
            raise ArtifactError(
                f"{self.folder / MANIFEST} says version {self.version} but its files, labels and limit "
                f"make {expected} (edited by hand?): {HINT}"
            )


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


def read_artifact(folder: Path, check: Callable[[bytes], object] | None = None) -> Artifact:
    """The artifact in `folder`, its manifest first passed to `check` (which raises ValueError
    saying what is wrong: service.manifest's schema), then its files verified."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"no model artifact at {folder} ({MANIFEST} missing): {HINT}")
    try:
        text = path.read_bytes()
        if check is not None:
            check(text)
        artifact = Artifact.of(folder, json.loads(text))
    except KeyError as err:
        raise ArtifactError(f"{path} is not a valid manifest (no {err} in it): {HINT}") from None
    except (OSError, ValueError, TypeError, AttributeError) as err:
        raise ArtifactError(f"{path} is not a valid manifest ({err}): {HINT}") from None
    artifact.verify()
    return artifact
