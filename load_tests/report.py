"""What a load run measured, summarized: client-side latency and throughput, server stage times."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAGES = ("queue", "tokenize", "inference")


@dataclass
class Recorder:
    """Per-request observations of one run, appended as responses arrive."""

    latencies: list[float] = field(default_factory=list)  # seconds, send to full response
    answered: list[float] = field(default_factory=list)  # the same, of 2xx responses only
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # no response at all: kind -> count
    cache: Counter[str] = field(default_factory=Counter)  # X-Cache: hit / miss
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})  # ms, misses
    lag: list[float] = field(default_factory=list)  # open model: seconds each send was behind schedule
    stopped: str | None = None  # why the run stopped early, if it did

    def response(self, latency: float, status: int, headers: dict[bytes, bytes]) -> None:
        """Record one response and the server's stage times it carries."""
        self.latencies.append(latency)
        if 200 <= status < 300:
            self.answered.append(latency)
        self.statuses[status] += 1
        cache = headers.get(b"x-cache")
        if cache is not None:
            self.cache[cache.decode()] += 1
            if cache == b"miss":
                for stage in STAGES:
                    value = headers.get(f"x-{stage}-time".encode())
                    if value is not None:
                        self.stages[stage].append(float(value))

    def error(self, err: BaseException) -> None:
        """Record a request that got no response."""
        self.errors[type(err).__name__] += 1


def percentiles(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """p50/p95/p99/max/mean of `values` times `scale`, rounded to 3 decimals; NaN when empty."""
    if not values:
        return {k: math.nan for k in ("p50", "p95", "p99", "max", "mean")}
    a = np.asarray(values) * scale
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        k: round(float(v), 3)
        for k, v in {"p50": p50, "p95": p95, "p99": p99, "max": a.max(), "mean": a.mean()}.items()
    }


def summarize(rec: Recorder, wall_seconds: float, cpu_seconds: float, sent: int) -> dict[str, Any]:
    """The run's numbers; `passed` is false on any non-2xx, lost request or early stop."""
    ok = sum(n for status, n in rec.statuses.items() if 200 <= status < 300)
    looked_up = rec.cache["hit"] + rec.cache["miss"]
    return {
        "passed": ok == sent and rec.stopped is None,
        "sent": sent,
        "ok": ok,
        "statuses": {str(s): n for s, n in sorted(rec.statuses.items())},
        "errors": dict(rec.errors),
        "stopped": rec.stopped,
        "duration_s": round(wall_seconds, 3),
        "throughput_rps": round(ok / wall_seconds, 1) if wall_seconds > 0 else 0.0,
        "latency_ms": percentiles(rec.latencies, 1e3),
        "answered_latency_ms": percentiles(rec.answered, 1e3),
        "hit_ratio": round(rec.cache["hit"] / looked_up, 4) if looked_up else None,
        "server_ms": {s: percentiles(v) for s, v in rec.stages.items() if v},
        "schedule_lag_ms": percentiles(rec.lag, 1e3) if rec.lag else None,
        "client_cpu_percent": round(100 * cpu_seconds / wall_seconds, 1) if wall_seconds > 0 else 0.0,
    }


COLUMNS = (
    "run",
    "rps",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "hit ratio",
    "server inference p50 ms",
    "server queue p99 ms",
    "client CPU %",
    "CPU µs/request: front / model workers / client",
    "ok / sent",
)


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown_row(name: str, s: dict[str, Any]) -> str:
    """One table row (see COLUMNS) for a summary."""
    server = s["server_ms"]
    cells = [
        name,
        s["throughput_rps"],
        s["latency_ms"]["p50"],
        s["latency_ms"]["p95"],
        s["latency_ms"]["p99"],
        s["latency_ms"]["max"],
        s["hit_ratio"],
        server.get("inference", {}).get("p50"),
        server.get("queue", {}).get("p99"),
        s["client_cpu_percent"],
        " / ".join(_fmt(v) for v in s["cpu_us_per_request"].values()) if "cpu_us_per_request" in s else None,
        f"{s['ok']} / {s['sent']}",
    ]
    return "| " + " | ".join(_fmt(c) for c in cells) + " |"


def markdown_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A Markdown table of named summaries."""
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS)
    return "\n".join([head, *(markdown_row(name, s) for name, s in rows)])
