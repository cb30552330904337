"""Read and verify the model artifact folder written by models.build."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
REQUIRED_KEYS = ("name", "version", "labels", "max_sequence_length", "files")


class ArtifactError(Exception):
    """The artifact folder is missing, incomplete or corrupt; the message says how to fix it."""


@dataclass(frozen=True)
class Artifact:
    """A verified artifact: where its files are and what its manifest says."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.manifest["labels"])

    @property
    def max_sequence_length(self) -> int:
        return int(self.manifest["max_sequence_length"])

    @property
    def model_path(self) -> Path:
        return self.folder / "model.onnx"

    @property
    def tokenizer_path(self) -> Path:
        return self.folder / "tokenizer.json"

    def summary(self) -> dict[str, Any]:
        """What clients may see: identity, labels, limits, quality; no local paths."""
        keys = (
            "name",
            "version",
            "labels",
            "max_sequence_length",
            "source",
            "quantization",
            "accuracy",
            "latency_single_thread",
            "build_date",
        )
        return {k: self.manifest[k] for k in keys if k in self.manifest}


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_artifact(folder: Path, verify_hashes: bool = True) -> Artifact:
    """Load the manifest and check the files it lists exist and match their SHA-256."""
    hint = "build it with `make model` (or point TEXTCLF_MODEL_DIR at a folder written by models.build)"
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"no model artifact at {folder} ({MANIFEST} missing): {hint}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path} is not valid JSON ({err}): {hint}") from None
    missing = [k for k in REQUIRED_KEYS if k not in manifest] if isinstance(manifest, dict) else REQUIRED_KEYS
    if missing:
        raise ArtifactError(f"{path} lacks {list(missing)}: {hint}")
    for name, expected in manifest["files"].items():
        file = folder / name
        if not file.is_file():
            raise ArtifactError(f"{file} is missing: {hint}")
        if verify_hashes and sha256(file) != expected:
            raise ArtifactError(
                f"{file} does not match the SHA-256 in {MANIFEST} (corrupt or edited): {hint}"
            )
    for name in ("model.onnx", "tokenizer.json"):
        if name not in manifest["files"]:
            raise ArtifactError(f"{path} does not list {name}: {hint}")
    return Artifact(folder, manifest)
