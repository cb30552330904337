"""models.latency compares built artifacts side by side (structure only: no timing thresholds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models import latency
from tests.conftest import Built


def test_compare_reports_every_artifact_against_the_first(
    small_model: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_model.artifact, copy)
    texts = small_model.work / "data" / "test.jsonl"
    argv = [
        str(small_model.artifact),
        str(copy),
        "--texts",
        str(texts),
        "--tokens",
        "16",
        "32",
        "--runs",
        "5",
    ]
    assert latency.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report) == [str(small_model.artifact), str(copy)]
    first = report[str(small_model.artifact)]
    assert first["speedup_p50"] == {"16": 1.0, "32": 1.0}
    assert first["test_accuracy_int8"] == small_model.manifest["accuracy"]["int8"]["accuracy"]
    assert first["layers"] is None  # not a distilled student
    for row in report.values():
        assert set(row["latency"]) == {"16", "32"}
        assert all(0 < v["p50_ms"] <= v["p99_ms"] for v in row["latency"].values())
