from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service.artifact import ArtifactError, load_artifact
from tests.conftest import Built


def test_loads_a_built_artifact(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    assert artifact.labels == ("negative", "neutral", "positive")
    assert artifact.version == small_model.manifest["version"]
    assert "files" not in artifact.summary()  # no local details leak to clients


def test_missing_folder_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="make model"):
        load_artifact(tmp_path / "nowhere")


def test_corrupt_model_file_is_detected(small_model: Built, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model.artifact, copy)
    with (copy / "model.onnx").open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00garbage\x00")
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_artifact(copy)


def test_manifest_without_required_keys_is_rejected(small_model: Built, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model.artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["labels"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="labels"):
        load_artifact(copy)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"labels": "abc"}, "labels"),  # a string is not a list of labels
        ({"labels": ["a", "a"]}, "labels"),
        ({"max_sequence_length": "512"}, "max_sequence_length"),  # strict: no quoted numbers
        ({"max_sequence_length": 1}, "max_sequence_length"),
        ({"files": {"model.onnx": "x"}}, "files"),  # no tokenizer listed
        ({"name": 7}, "name"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused_at_load(
    small_model: Built, tmp_path: Path, change: dict[str, object], where: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model.artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(manifest | change))
    with pytest.raises(ArtifactError, match=f"not a valid manifest.*{where}"):
        load_artifact(copy)


def test_the_service_reads_what_the_build_writes(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    written = small_model.manifest
    assert artifact.manifest.model_dump(mode="json") == written  # nothing dropped, nothing added
    assert artifact.summary()["accuracy"] == written["accuracy"]
