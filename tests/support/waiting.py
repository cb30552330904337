"""Waiting for something to happen, never for a fixed time: a condition polled until it holds.

Each wait has a deadline, generous on purpose: it keeps a broken test from hanging, and says what
never happened; it is not a claim about speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object],
    what: str,
    seconds: float = 60,
    ignoring: tuple[type[BaseException], ...] = (),
) -> None:
    """Poll `condition` every 50 ms until it is true; AssertionError naming `what` past `seconds`.
    An exception of an `ignoring` type counts as not yet (a server still starting, say)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except ignoring:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def until(condition: Callable[[], object], what: str = "the condition", seconds: float = 60) -> None:
    """`wait_until` inside an event loop: poll every 10 ms, leaving the loop free meanwhile."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def settled(condition: Callable[[], object], what: str = "the condition") -> None:
    """Let the tasks already started run until `condition` holds: a few loop turns, no clock, for
    what they do without waiting on anything outside the loop (a job handed to a worker's socket)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never settled: {what}")
