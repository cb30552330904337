"""The CPU-loss scenario runs both admission bounds against the real service and reports each scene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from load_tests.cpu_loss import BOUNDS
from tests.conftest import Built


def test_scenario_reports_each_scene_under_each_bound(small_model: Built, tmp_path: Path) -> None:
    out = tmp_path / "cpu_loss.json"
    result = subprocess.run(
        [sys.executable, "-m", "load_tests.cpu_loss", "--model-dir", str(small_model.artifact)]
        + ["--rate", "40", "--burst-rate", "80", "--seconds", "8", "--neighbour-after", "0.5"]
        + ["--json", str(out)]
        + ["--texts", str(small_model.work / "data" / "test.jsonl")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report) == {f"{scene}, {bound}" for scene in ("neighbour", "burst") for bound in BOUNDS}
    assert all(report[f"neighbour, {bound}"]["neighbour_loaded"] for bound in BOUNDS)
    for row in report.values():
        assert set(row["statuses"]) <= {"200", "429"} and row["statuses"].get("200", 0) > 0, row
        assert sum(row["statuses"].values()) == row["sent"]
