from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.artifact import Artifact, ArtifactError, read_artifact
from service.manifest import Manifest, load_artifact
from tests.conftest import Built


def test_loads_a_built_artifact(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    assert artifact.labels == ("negative", "neutral", "positive")
    assert artifact.version == small_model.manifest["version"]
    assert "files" not in artifact.summary()  # no local details leak to clients
    artifact.summary()["accuracy"]["int8"]["accuracy"] = 0.0  # a caller editing its answer
    assert artifact.summary()["accuracy"] == small_model.manifest["accuracy"]


def test_missing_folder_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="make model"):
        load_artifact(tmp_path / "nowhere")


def edited_copy(built: Built, tmp_path: Path, edit: Callable[[dict[str, Any]], object]) -> Path:
    """A copy of a built artifact whose manifest `edit` changed in place."""
    copy = tmp_path / "copy"
    shutil.copytree(built.artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


# A model worker reads its artifact without the schema (no pydantic in it): the files and the
# version are still checked.
READERS = pytest.mark.parametrize("read", [load_artifact, read_artifact], ids=["front", "model worker"])


@READERS
def test_corrupt_model_file_is_detected(
    small_model: Built, tmp_path: Path, read: Callable[[Path], Artifact]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model.artifact, copy)
    with (copy / "model.onnx").open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00garbage\x00")
    with pytest.raises(ArtifactError, match="SHA-256"):
        read(copy)


@READERS
def test_manifest_without_required_keys_is_rejected(
    small_model: Built, tmp_path: Path, read: Callable[[Path], Artifact]
) -> None:
    copy = edited_copy(small_model, tmp_path, lambda manifest: manifest.pop("labels"))
    with pytest.raises(ArtifactError, match="not a valid manifest.*labels"):
        read(copy)


@READERS
def test_a_manifest_without_a_problem_type_is_a_single_label_models(
    small_model: Built, tmp_path: Path, read: Callable[[Path], Artifact]
) -> None:
    # Manifests written before multi-label models have none.
    artifact = read(edited_copy(small_model, tmp_path, lambda manifest: manifest.pop("problem_type")))
    assert not artifact.multi_label and artifact.thresholds is None
    assert artifact.summary()["problem_type"] == "single_label_classification"


def test_a_model_worker_loads_no_graph_whose_file_is_not_hashed(small_model: Built, tmp_path: Path) -> None:
    # The schema refuses it at the front; a worker reading a folder edited since checks it too.
    graphs = {"fused": "model.onnx", "other": "model.other.onnx"}
    copy = edited_copy(small_model, tmp_path, lambda manifest: manifest.update(graphs=graphs))
    shutil.copy(copy / "model.onnx", copy / "model.other.onnx")
    with pytest.raises(ArtifactError, match="does not list model.other.onnx among its files"):
        read_artifact(copy)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"labels": "abc"}, "labels"),  # a string is not a list of labels
        ({"labels": ["a", "a"]}, "labels"),
        ({"max_sequence_length": "512"}, "max_sequence_length"),  # strict: no quoted numbers
        ({"max_sequence_length": 1}, "max_sequence_length"),
        ({"files": {"model.onnx": "x"}}, "files"),  # no tokenizer listed
        ({"name": 7}, "name"),
        ({"label_mix": {"yes": 0.5, "no": 0.5}}, "label_mix"),  # not the model's labels
        ({"label_mix": {"negative": 1.5, "neutral": 0.0, "positive": 0.0}}, "label_mix"),
        # Thresholds are a multi-label model's, one per label, each a probability.
        ({"thresholds": {"negative": 0.5, "neutral": 0.5, "positive": 0.5}}, "thresholds"),
        ({"problem_type": "multi_label_classification"}, "thresholds"),
        ({"problem_type": "multi_label_classification", "thresholds": {"negative": 0.5}}, "thresholds"),
        (
            {
                "problem_type": "multi_label_classification",
                "thresholds": {"negative": 0.5, "neutral": 1.2, "positive": 0.5},
            },
            "thresholds",
        ),
        ({"problem_type": "multi_label"}, "problem_type"),
        # Each graph a file it lists, the primary one model.onnx.
        ({"graphs": {"fused": "model.onnx", "unfused": "model.other.onnx"}}, "graphs"),
        ({"graphs": {"unfused": "model.unfused.onnx"}}, "graphs"),
        ({"graphs": {"fused": "model.unfused.onnx"}}, "graphs"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused_at_load(
    small_model: Built, tmp_path: Path, change: dict[str, object], where: str
) -> None:
    copy = edited_copy(small_model, tmp_path, lambda manifest: manifest.update(change))
    with pytest.raises(ArtifactError, match=f"not a valid manifest.*{where}"):
        load_artifact(copy)


def test_the_service_reads_what_the_build_writes(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    written = small_model.manifest
    assert artifact.manifest == written
    schema = Manifest.parse((small_model.artifact / "manifest.json").read_bytes())
    assert schema.model_dump(mode="json") == written  # nothing dropped, nothing added
    assert read_artifact(small_model.artifact) == artifact  # a model worker reads the same
    assert artifact.summary()["accuracy"] == written["accuracy"]


@READERS
def test_a_version_that_does_not_match_the_files_is_refused(
    small_model: Built, tmp_path: Path, read: Callable[[Path], Artifact]
) -> None:
    copy = edited_copy(small_model, tmp_path, lambda manifest: manifest.update(version="0123456789ab"))
    built = small_model.manifest["version"]
    with pytest.raises(ArtifactError, match=f"says version 0123456789ab but .* make {built}"):
        read(copy)


def verify(folder: Path) -> subprocess.CompletedProcess[str]:
    """The image build's check, run as the Dockerfile runs it."""
    return subprocess.run(
        [sys.executable, "-m", "service.manifest", str(folder)], capture_output=True, text=True, check=False
    )


def test_the_verify_command_passes_a_built_artifact_and_names_its_version(small_model: Built) -> None:
    result = verify(small_model.artifact)
    assert result.returncode == 0, result.stderr
    assert small_model.manifest["version"] in result.stdout


@pytest.mark.parametrize("damage", ["unlisted file", "corrupt tokenizer", "corrupt weights", "no manifest"])
def test_the_verify_command_refuses_what_should_not_ship(
    small_model: Built, tmp_path: Path, damage: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model.artifact, copy)
    if damage == "unlisted file":
        (copy / "model.fp32.onnx").write_bytes(b"left over from a build")
    elif damage == "corrupt tokenizer":
        (copy / "tokenizer.json").write_text("{}")
    elif damage == "corrupt weights":  # the graph's weights are a file of their own
        with (copy / "model.weights").open("r+b") as f:
            first = f.read(1)
            f.seek(0)
            f.write(bytes([first[0] ^ 0xFF]))
    else:
        (copy / "manifest.json").unlink()
    result = verify(copy)
    assert result.returncode == 1
    expected = {
        "unlisted file": "does not list: model.fp32.onnx",
        "corrupt tokenizer": "tokenizer.json does not",
        "corrupt weights": "model.weights does not",
    }
    assert expected.get(damage, "manifest.json missing") in result.stderr
