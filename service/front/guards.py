"""ASGI middleware that rejects bodies the API cannot accept before any parsing happens."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from starlette.requests import ClientDisconnect

from service.front.asgi import ASGIApp, Message, Receive, Scope, Send
from service.front.errors import ErrorType, send_error
from service.front.open_inference import model_path

# Most of a refused body read and dropped so the client sees the 413 (see BodyGuard._discard).
LINGER_BYTES = 16 * 2**20


class Deadline:
    """`asyncio.timeout(seconds)` for one task at a third of its cost (8 µs a request on this path):
    one loop timer that cancels the task, and that cancellation raised as TimeoutError."""

    __slots__ = ("_seconds", "_task", "_timer", "_expired")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._expired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._timer = asyncio.get_running_loop().call_later(self._seconds, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        self._timer.cancel()
        # Only our own cancellation becomes a timeout; one from elsewhere (shutdown) goes on up.
        if self._expired and self._task.uncancel() == 0 and kind is asyncio.CancelledError:
            raise TimeoutError from error


class BodyGuard:
    """415 for non-JSON or compressed bodies, 413 for bodies over the limit (by header, or counted
    when chunked), 408 for a body not received within `read_timeout` seconds; the app gets the
    body read whole.

    Only on the routes that take a body: any other method or path goes on to routing, which
    answers 405 or 404 without reading the body.
    """

    def __init__(
        self,
        app: ASGIApp,
        body_paths: Collection[str],
        max_body_bytes: int,
        read_timeout: float,
    ) -> None:
        self.app = app
        self.body_paths = frozenset(body_paths)
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        # The Open Inference Protocol's infer body is JSON, or JSON and binary tensors (tritonclient
        # sends no Content-Type): its own decoder checks it.
        any_type = model_path(path) is not None
        if not any_type and path not in self.body_paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if not any_type and media_type != b"application/json":
            message = "Content-Type must be application/json"
            await send_error(send, ErrorType.UNSUPPORTED_MEDIA_TYPE, message, close=True)
            return
        if headers.get(b"content-encoding", b"identity").strip().lower() != b"identity":
            message = "Content-Encoding is not supported: send the body uncompressed"
            await send_error(send, ErrorType.UNSUPPORTED_MEDIA_TYPE, message, close=True)
            return
        length = headers.get(b"content-length")
        if length is not None and not length.isdigit():
            await self._too_large(send, more=True)
            return
        try:
            # From the headers to the last body byte: a client that trickles its body is cut here,
            # before admission, so it never holds a slot a complete request needs.
            async with Deadline(self.read_timeout):
                if length is not None and int(length) > self.max_body_bytes:
                    # Read at most LINGER_BYTES of a body that will be refused anyway.
                    more = int(length) > LINGER_BYTES or await self._discard(receive, 0)
                    await self._too_large(send, more)
                    return
                body = await self._read(receive, send)
        except TimeoutError:
            message = f"request body not received within {self.read_timeout:g} s"
            await send_error(send, ErrorType.REQUEST_TIMEOUT, message, close=True)
            return
        if body is not None:
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)

    async def _read(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, counted as it arrives (chunked bodies have no length); None once refused.

        Raises ClientDisconnect if the client hangs up before the last byte.
        """
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnect  # service.front.unhandled answers 499, not a 4xx on a partial body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                more = message.get("more_body", False) and await self._discard(receive, size)
                await self._too_large(send, more)
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

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
