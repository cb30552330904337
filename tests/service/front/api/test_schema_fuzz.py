"""Property-based: schemathesis generates requests from the service's own OpenAPI schema, valid
and invalid, and checks every answer: no 5xx, status, content type and body as documented."""

from __future__ import annotations

from pathlib import Path

from load_tests.server import RunningService
from tests.service.conftest import schemathesis


def test_schemathesis_finds_no_failure(service: RunningService, tmp_path: Path) -> None:
    result = schemathesis(service.url, tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
