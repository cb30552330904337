"""A connection's transport whose writes leave together: a response's head and body in one send.

uvicorn writes a response's status line and headers when the app sends `http.response.start`,
and its body on `http.response.body`: two syscalls and two TCP segments for every small JSON
answer, where one does. Writes are held until the response completes (the protocol calls
`flush`), or until the end of the event loop's turn for anything else (a 100 Continue, a
streamed body), so nothing waits longer than that, and a close sends what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescedWrites:
    """Wraps an asyncio transport; every other attribute is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold `data` behind anything held already; it leaves by the end of this loop turn."""
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def send_now(self, data: bytes) -> None:
        """Send `data` at once, after anything held: a whole response, already one buffer."""
        if self._held:
            self._held.append(data)
            self.flush()
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send everything held, in one write."""
        if self._held:
            held, self._held = self._held, []
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def is_closing(self) -> bool:
        """Whether the connection is closing (asked on every request: not left to __getattr__)."""
        return self._transport.is_closing()

    def close(self) -> None:
        """Send what is held, then close."""
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Send what is held, then half-close."""
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        """Drop what is held and close at once."""
        self._held.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
