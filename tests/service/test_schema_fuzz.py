"""Property-based: schemathesis generates requests from the service's own OpenAPI schema, valid
and invalid, and checks every answer: no 5xx, status, content type and body as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from load_tests.server import RunningService


def test_schemathesis_finds_no_failure(service: RunningService, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            service.url + "/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "100",
            # Bounded and repeatable: the same requests on every run, so a failure reproduces.
            "--generation-deterministic",
            "--workers",
            "1",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
