"""Start the shutdown clock the moment SIGTERM (or SIGINT) arrives, not when uvicorn's drain ends.

uvicorn drains connections for `timeout_graceful_shutdown` and then cancels what is left, so a
request still waiting for a model worker then would get no answer at all; the lifespan's
shutdown only runs after that. The backend must learn of the signal when it comes, to answer
every waiting request within the same budget. uvicorn's own handler still runs after ours.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def on_termination(callback: Callable[[], None]) -> Iterator[None]:
    """Run `callback` on this event loop when SIGTERM or SIGINT arrives, then the handler before ours."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (an app run by a test client)
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)  # the loop may be mid-callback: never touch its state here
        chained = previous[signal.Signals(signum)]
        if callable(chained):
            chained(signum, frame)

    for sig in SIGNALS:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
