"""CPU time by process, read from /proc: what a load run cost each process, per request answered.

The front's CPU is paid on every request, hit or miss, so it is reported beside throughput: a
request's CPU split into the HTTP front, the model workers and the load generator itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds these processes have used so far (a process gone counts 0)."""
    ticks = 0
    for pid in pids:
        try:
            # The command name may hold spaces and parentheses: fields are counted after the last ")".
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / TICKS_PER_SECOND


class CpuMeter:
    """CPU seconds of named groups of processes between `start()` and `per_request()`."""

    def __init__(self, groups: Mapping[str, Iterable[int]]) -> None:
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self._start: dict[str, float] = {}

    def start(self) -> None:
        """Take the first reading."""
        self._start = {name: cpu_seconds(pids) for name, pids in self.groups.items()}

    def per_request(self, requests: int) -> dict[str, float]:
        """Microseconds of CPU per request for each group since `start()`."""
        return {
            name: round((cpu_seconds(pids) - self._start[name]) / max(requests, 1) * 1e6, 1)
            for name, pids in self.groups.items()
        }
