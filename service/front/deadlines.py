"""Deadlines for many waits at once (request heads, request bodies), kept by one periodic check.

A loop timer per wait costs a request ~1.8 µs to arm and cancel on uvloop, and a request has two
(its head, its body); a deadline here is a dict entry, and one timer per `Deadlines`, running only
while a deadline is set, expires them every `tick` seconds. A wait may so last up to one tick past
its deadline: the head's and the body's `Deadlines` tick at a tenth of their timeout (the request
read timeout, 5 s by default), never faster than every MIN_TICK_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable

MIN_TICK_SECONDS = 0.05

log = logging.getLogger(__name__)


class Deadlines:
    """Calls each waiter's `on_expiry` once its deadline passed, unless cleared first."""

    def __init__(self, tick: float) -> None:
        self.tick = max(tick, MIN_TICK_SECONDS)
        self._due: dict[Hashable, tuple[float, Callable[[], None]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the timer's

    @classmethod
    def for_timeout(cls, timeout: float) -> Deadlines:
        """Deadlines of waits that each last at most `timeout` seconds: checked every tenth of it."""
        return cls(timeout / 10)

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop. asyncio asks the kernel for the process id each time it is asked for
        the running loop (a fork check): the one these deadlines run on is kept while it runs."""
        loop = self._loop
        if loop is None or not loop.is_running():  # the first wait, or one on a new loop
            loop = asyncio.get_running_loop()
            self._due.clear()  # a closed loop's waits are over
            self._timer, self._loop = None, loop
        return loop

    def set(self, key: Hashable, seconds: float, on_expiry: Callable[[], None]) -> None:
        """`on_expiry` runs within `tick` of `seconds` from now, unless `clear(key)` comes first."""
        loop = self.loop()
        self._due[key] = (loop.time() + seconds, on_expiry)
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._expire)

    def clear(self, key: Hashable) -> None:
        """Forget `key`'s deadline (the wait is over)."""
        self._due.pop(key, None)

    def _expire(self) -> None:
        loop = self.loop()
        self._timer = None
        now = loop.time()
        try:
            for key in [key for key, (due, _) in self._due.items() if due <= now]:
                entry = self._due.pop(key, None)  # an earlier callback may have cleared it
                if entry is None:
                    continue
                try:
                    entry[1]()
                except Exception:  # one waiter's failure must not switch the others' deadlines off
                    log.exception("a deadline's expiry failed")
        finally:
            if self._due:
                self._timer = loop.call_later(self.tick, self._expire)


class Deadline:
    """`asyncio.timeout(seconds)` for the task that enters it, kept by `deadlines`: the task is
    cancelled once its time is up, and that cancellation raised as TimeoutError."""

    __slots__ = ("_deadlines", "_seconds", "_task", "_expired")

    def __init__(self, deadlines: Deadlines, seconds: float) -> None:
        self._deadlines = deadlines
        self._seconds = seconds
        self._expired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task(self._deadlines.loop())
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
