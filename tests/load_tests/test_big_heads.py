"""The huge-heads scenario runs against the real service and reports what docs/limits.md's table shows."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import Built


def test_scenario_reports_normal_load_answered_and_huge_heads_refused(small_model: Built) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "load_tests.big_heads", "--model-dir", str(small_model.artifact)]
        + ["--workers", "1", "--attackers", "2", "--seconds", "2"]
        + ["--texts", str(small_model.work / "data" / "test.jsonl")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    for run in ("normal_alone", "normal_with_attack"):
        assert set(report[run]["statuses"]) == {"200"}, report
    answered = report["attacks_answered"]
    assert set(answered["request target"]) == {"414"} and set(answered["header value"]) == {"431"}, report
