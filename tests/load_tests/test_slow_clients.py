"""The slow-client scenario runs against the real service and reports what docs/limits.md's table shows."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import Built


def test_scenario_reports_normal_load_unharmed_and_trickles_cut(small_model: Built) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "load_tests.slow_clients", "--model-dir", str(small_model.artifact)]
        + ["--workers", "1", "--per-worker", "10", "--seconds", "2"]
        + ["--texts", str(small_model.work / "data" / "test.jsonl")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    for run in ("normal_alone", "normal_with_trickles"):
        assert set(report[run]["statuses"]) == {"200"}, report
    assert report["trickles_answered"] == {"headers": {"408": 5}, "body": {"408": 5}}
