"""A classify request that came whole in one read, answered without an ASGI cycle.

uvicorn gives every request a scope, a cycle with its event, ASGI messages both ways and a check of
every response header against two regular expressions: ~25 µs of a request's ~180 µs of front CPU
(BENCHMARKS.md). A request the edge takes whole (service.front.edge.edge.Edge.whole_request) skips
all of it: the connection protocol keeps its body here, the edge answers it, and its Response is
written as one buffer. Everything else (a body still arriving, a refusal, any other route) goes
through uvicorn as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from service.front.edge.route_table import Match

if TYPE_CHECKING:  # the edge imports prometheus_client, which must wait for the launcher's settings
    from service.front.edge.edge import Response

log = logging.getLogger("service.errors")


@runtime_checkable
class AnswersWhole(Protocol):
    """An app that answers whole requests itself (service.front.edge.edge.Edge)."""

    def whole_request(self, method: str, path: str, headers: Mapping[bytes, bytes]) -> Match | None: ...

    async def answer(
        self, method: str, path: str, match: Match, headers: Mapping[bytes, bytes], body: bytes
    ) -> Response: ...


class WholeRequest:
    """One such request. It stands where uvicorn keeps a request's cycle, so that uvicorn's
    pipelining (a later request waits for `response_complete`) and graceful shutdown (which clears
    `keep_alive`) treat it as their own."""

    __slots__ = (
        "method",
        "path",
        "match",
        "headers",
        "keep_alive",
        "chunks",
        "complete",
        "response_complete",
    )

    def __init__(
        self, method: str, path: str, match: Match, headers: dict[bytes, bytes], keep_alive: bool
    ) -> None:
        self.method = method
        self.path = path
        self.match = match
        self.headers = headers
        self.keep_alive = keep_alive
        self.chunks: list[bytes] = []
        self.complete = False  # its last body byte was read
        self.response_complete = False

    def body(self) -> bytes:
        """The body, whole."""
        chunks = self.chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def response_bytes(
    response: Response, default_headers: Sequence[tuple[bytes, bytes]], keep_alive: bool
) -> bytes:
    """The whole HTTP/1.1 response: uvicorn's default headers (Date) first, as uvicorn writes them;
    the edge's own headers are its constants and checked ids, so none is checked again here."""
    parts = [STATUS_LINE[response.status]]
    for name, value in (*default_headers, *response.headers):
        parts += (name, b": ", value, b"\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts += (b"\r\n", response.payload)
    return b"".join(parts)


class Answering:
    """Runs one answer's coroutine to its end as an asyncio Task would, without being one: on
    Python 3.11 a Task costs ~4.3 µs to create and register, and first runs a loop turn later (3.12's
    eager tasks do what this does). Its first step runs at once, so an answer from the cache is
    written before the connection reads on; it then resumes on each future it waits for, in a context
    of its own (the request id, the span). It stands in uvicorn's set of running tasks until done:
    the graceful shutdown waits for it and, past its grace period, cancels it.
    """

    __slots__ = ("_coroutine", "_context", "_on_done", "_waiting", "_cancelling")

    def __init__(self, coroutine: Coroutine[Any, Any, None], on_done: Callable[[Answering], None]) -> None:
        self._coroutine = coroutine
        self._context = contextvars.copy_context()
        self._on_done = on_done
        self._waiting: asyncio.Future[Any] | None = None
        self._cancelling = False

    def start(self) -> None:
        """Run the first step, now."""
        self._context.run(self._step)

    def cancel(self, msg: object = None) -> bool:
        """Cancel the answer where it waits (CancelledError raised there), as Task.cancel does."""
        self._cancelling = True
        if self._waiting is not None:
            self._waiting.cancel()
        return True

    def _step(self, _: object = None) -> None:
        """One step, in the answer's own context (entered by `start`, and by the loop for the rest)."""
        self._waiting = None
        try:
            if self._cancelling:
                self._cancelling = False
                yielded = self._coroutine.throw(asyncio.CancelledError())
            else:
                yielded = self._coroutine.send(None)
        except (StopIteration, asyncio.CancelledError):
            self._on_done(self)
            return
        except Exception:
            log.exception("answering a whole request failed")
            self._on_done(self)
            return
        if yielded is None:  # a bare yield (asyncio.sleep(0)): resume on the next loop turn
            asyncio.get_running_loop().call_soon(self._step, context=self._context)
            return
        yielded._asyncio_future_blocking = False  # taken, as a Task takes it
        yielded.add_done_callback(self._step, context=self._context)
        self._waiting = yielded
