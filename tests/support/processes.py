"""Processes as the kernel sees them, from /proc: whether one exists, its state, its CPU time."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether a process with this id exists (a reaped one does not; a zombie still does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (which may hold spaces): state first."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def state(pid: int) -> str:
    """The process's state letter: R running, S sleeping, T stopped (SIGSTOP), Z zombie; "" if gone."""
    try:
        return _stat(pid)[0]
    except FileNotFoundError:
        return ""


def cpu_seconds(*pids: int) -> float:
    """User plus system CPU time these processes have used so far, in seconds (clock-tick resolution)."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")
