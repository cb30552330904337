"""The body a route takes, read whole within its limits before any parsing: 415, 413 or 408 else."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from starlette.requests import ClientDisconnect

from service.front.asgi import Receive, Send
from service.front.core.errors import ErrorType, send_error
from service.front.deadlines import Deadline, Deadlines
from service.front.edge.route_table import Body

# Most of a refused body read and dropped so the client sees the 413 (see BodyLimits._discard).
LINGER_BYTES = 16 * 2**20
JSON_MEDIA_TYPE = b"application/json"
# A declared length of more digits than this (leading zeros aside) is over any limit: Python will
# not even convert thousands of digits, and HTTP allows leading zeros.
MAX_LENGTH_DIGITS = 18


class BodyLimits:
    """415 for a JSON route's non-JSON body or any compressed body, 413 for a body over the limit
    (by header, or counted when chunked), 408 for a body not received within `read_timeout`
    seconds; else the body, read whole."""

    def __init__(self, max_body_bytes: int, read_timeout: float) -> None:
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self._deadlines = Deadlines.for_timeout(read_timeout)

    def accepts(self, kind: Body, headers: Mapping[bytes, bytes]) -> bool:
        """Whether `read` would take this body by its headers alone: of the right type, uncompressed,
        and of a declared length within the limit (a chunked body is counted as it comes)."""
        if not_json(kind, headers) or encoded(headers) or b"transfer-encoding" in headers:
            return False
        length = declared_length(headers)
        return length is not None and length <= self.max_body_bytes

    async def read(
        self, kind: Body, headers: Mapping[bytes, bytes], receive: Receive, send: Send
    ) -> bytes | None:
        """The body; None once refused (answered on `send`). Raises ClientDisconnect if the client
        hangs up before its last byte."""
        # The Open Inference Protocol's body is JSON, or JSON and binary tensors (tritonclient sends
        # no Content-Type): its own decoder checks it.
        if not_json(kind, headers):
            message = "Content-Type must be application/json"
            await send_error(send, ErrorType.UNSUPPORTED_MEDIA_TYPE, message, close=True)
            return None
        if encoded(headers):
            message = "Content-Encoding is not supported: send the body uncompressed"
            await send_error(send, ErrorType.UNSUPPORTED_MEDIA_TYPE, message, close=True)
            return None
        length = declared_length(headers)
        try:
            # From the headers to the last body byte: a client that trickles its body is cut here,
            # before admission, so it never holds a slot a complete request needs.
            async with Deadline(self._deadlines, self.read_timeout):
                if length is not None and length > self.max_body_bytes:
                    # Read at most LINGER_BYTES of a body that will be refused anyway.
                    more = length > LINGER_BYTES or await self._discard(receive, 0)
                    await self._too_large(send, more)
                    return None
                return await self._read(receive, send)
        except TimeoutError:
            message = f"request body not received within {self.read_timeout:g} s"
            await send_error(send, ErrorType.REQUEST_TIMEOUT, message, close=True)
            return None

    async def _read(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, counted as it arrives (chunked bodies have no length); None once refused."""
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnect  # answered 499 by the edge, not a 4xx on a partial body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                more = message.get("more_body", False) and await self._discard(receive, size)
                await self._too_large(send, more)
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _too_large(self, send: Send, more: bool) -> None:
        """413; the connection is closed only if part of the body is still unread."""
        message = f"body over {self.max_body_bytes} bytes"
        await send_error(send, ErrorType.PAYLOAD_TOO_LARGE, message, close=more)

    @staticmethod
    async def _discard(receive: Receive, read: int) -> bool:
        """Read and drop the rest of a refused body, up to LINGER_BYTES in all; True if some is left.

        A lingering close: most clients (http.client, requests, SDKs) send the whole body before
        they read a response, and a socket closed with unread data resets the connection, so they
        would see "connection reset" and never the 413.
        """
        while read <= LINGER_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return False  # the client is gone
            read += len(message.get("body", b""))
            if not message.get("more_body", False):
                return False
        return True


def not_json(kind: Body, headers: Mapping[bytes, bytes]) -> bool:
    """Whether a route taking JSON was sent another media type."""
    if kind is not Body.JSON:
        return False
    return headers.get(b"content-type", b"").split(b";")[0].strip().lower() != JSON_MEDIA_TYPE


def encoded(headers: Mapping[bytes, bytes]) -> bool:
    """Whether the body is compressed (or otherwise content-encoded)."""
    return headers.get(b"content-encoding", b"identity").strip().lower() != b"identity"


def declared_length(headers: Mapping[bytes, bytes]) -> int | None:
    """The body's declared length (None if none is); one that is no length at all, or past
    MAX_LENGTH_DIGITS, counts as too large for any limit."""
    value = headers.get(b"content-length")
    if value is None:
        return None
    digits = value.lstrip(b"0")
    if not value.isdigit() or len(digits) > MAX_LENGTH_DIGITS:
        return sys.maxsize
    return int(digits or b"0")
