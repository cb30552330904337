"""A classify request that came whole in one read, answered without an ASGI cycle.

uvicorn gives every request a scope, a cycle with its event, ASGI messages both ways and a check of
every response header against two regular expressions; skipping them (and the edge's ASGI
wrapping) saved 28 µs of front CPU a miss and 31 a cache hit (BENCHMARKS.md). A request the edge
takes whole (service.front.edge.edge.Edge.whole_request) skips all of it: the connection protocol
keeps its body here, the edge answers it, and its Response is written as one buffer. Everything
else (a body still arriving, a refusal, any other route) goes through uvicorn as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from service.front.edge.route_table import Match

if TYPE_CHECKING:  # the edge imports prometheus_client, which must wait for the launcher's settings
    from service.front.edge.edge import Response


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
        "body_read",
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
        self.body_read = False
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
    close = () if keep_alive else ((b"connection", b"close"),)
    return http_response(response.status, (*default_headers, *response.headers, *close), response.payload)


def http_response(status: int, headers: Iterable[tuple[bytes, bytes]], payload: bytes) -> bytes:
    """A response's status line, headers and body, in one buffer."""
    parts = [STATUS_LINE[status]]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts += (b"\r\n", payload)
    return b"".join(parts)
