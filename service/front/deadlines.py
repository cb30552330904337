"""Deadlines for many waits at once (a request's head, its body), kept by one periodic check.

A loop timer per wait costs a request ~1.8 µs to arm and cancel on uvloop, twice (head and body);
a deadline here is a dict entry, and one timer, running only while a deadline is set, expires them
every `tick` seconds. A wait may so last up to one tick past its deadline: the tick is a tenth of
the shortest timeout (the request read timeout, 5 s by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

MIN_TICK_SECONDS = 0.05


class Deadlines:
    """Calls each waiter's `on_expiry` once its deadline passed, unless cleared first."""

    def __init__(self, tick: float) -> None:
        self.tick = max(tick, MIN_TICK_SECONDS)
        self._due: dict[Hashable, tuple[float, Callable[[], None]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the timer's

    def set(self, key: Hashable, seconds: float, on_expiry: Callable[[], None]) -> None:
        """`on_expiry` runs within `tick` of `seconds` from now, unless `clear(key)` comes first."""
        loop = asyncio.get_running_loop()
        self._due[key] = (loop.time() + seconds, on_expiry)
        if self._timer is None or self._loop is not loop:  # none yet, or on a loop since closed
            self._timer, self._loop = loop.call_later(self.tick, self._expire), loop

    def clear(self, key: Hashable) -> None:
        """Forget `key`'s deadline (the wait is over)."""
        self._due.pop(key, None)

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        expired = [key for key, (due, _) in self._due.items() if due <= now]
        for key in expired:
            _, on_expiry = self._due.pop(key)
            on_expiry()
        self._timer = loop.call_later(self.tick, self._expire) if self._due else None


class Deadline:
    """`asyncio.timeout(seconds)` for the task that enters it, kept by `deadlines`: the task is
    cancelled once its time is up, and that cancellation raised as TimeoutError."""

    __slots__ = ("_deadlines", "_seconds", "_task", "_expired")

    def __init__(self, deadlines: Deadlines, seconds: float) -> None:
        self._deadlines = deadlines
        self._seconds = seconds
        self._expired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._deadlines.set(self, self._seconds, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        self._deadlines.clear(self)
        # Only our own cancellation becomes a timeout; one from elsewhere (shutdown) goes on up.
        if self._expired and self._task.uncancel() == 0 and kind is asyncio.CancelledError:
            raise TimeoutError from error
