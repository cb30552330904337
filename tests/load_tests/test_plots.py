"""The benchmark's figures are real PNG files drawn from the runs given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from load_tests import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def open_run(rate: float, p50: float, p99: float) -> dict[str, object]:
    return {"config": {"rate": rate}, "latency_ms": {"p50": p50, "p99": p99}}


def test_latency_against_load_is_a_png(tmp_path: Path) -> None:
    sweeps = {
        "pool": [open_run(100, 2.0, 4.0), open_run(200, 2.5, 6.0)],
        "mosec": [open_run(100, 1.9, 3.5), open_run(200, 2.4, 7.0)],
    }
    path = tmp_path / "latency.png"
    plots.latency_vs_load(sweeps, path)
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_ladder_bars_skip_steps_without_a_latency(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"step": "(a) PyTorch fp32, padded to 128", "p50_ms_16_tokens": 30.0, "texts_per_s": 33.7},
        {"step": "(e) (d) + LRU cache, 40% hits", "p50_ms_16_tokens": None, "texts_per_s": 886.4},
    ]
    path = tmp_path / "ladder.png"
    plots.ladder_bars(rows, path)
    assert path.read_bytes().startswith(PNG_MAGIC)
