"""The benchmark's figures as PNG files: latency against offered load, and the ladder as bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no screen here, nor in CI

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def latency_vs_load(sweeps: Mapping[str, Sequence[dict[str, Any]]], path: Path) -> None:
    """p50 (dashed) and p99 (solid) against the offered rate, one colour per system."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (system, runs), colour in zip(sweeps.items(), colours, strict=False):
        rates = [run["config"]["rate"] for run in runs]
        for quantile, style in (("p99", "-"), ("p50", "--")):
            ms = [run["latency_ms"][quantile] for run in runs]
            ax.plot(rates, ms, style, marker="o", color=colour, label=f"{system} {quantile}")
    ax.set_xlabel("offered load, requests/s (open model, test-split mix, cache off)")
    ax.set_ylabel("client-side latency, ms")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(ncol=2, fontsize="small")
    ax.set_title("Latency against offered load, 2 model workers")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def ladder_bars(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Each step of the ladder: p50 latency at 16 tokens and throughput on the test mix."""
    # "(e) (d) + LRU cache, 40% hits" -> "(e) 40%": the cache rows differ only by their hits.
    steps = [
        row["step"][:3] + (" " + row["step"].rsplit(" ", 2)[1] if "hits" in row["step"] else "")
        for row in rows
    ]
    fig, (latency, throughput) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    timed = [(s, r["p50_ms_16_tokens"]) for s, r in zip(steps, rows, strict=True) if r["p50_ms_16_tokens"]]
    latency.bar([s for s, _ in timed], [ms for _, ms in timed], color="tab:blue")
    latency.set_ylabel("p50 ms, 16 tokens, one thread")
    throughput.bar(steps, [r["texts_per_s"] for r in rows], color="tab:green")
    throughput.set_ylabel("texts/s, test-split mix, one thread")
    throughput.tick_params(axis="x", labelsize="small")
    for ax in (latency, throughput):
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("The ladder: each step's gain (steps as in the table)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
