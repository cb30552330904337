"""Bounds on a request's head, checked on the bytes as they arrive, before the HTTP parser sees them.

With httptools, uvicorn grows the request target (`self.url += url`) and httptools each header
value by concatenation, with no limit: a 32 MB target is read in full, in quadratic copies,
before the request is refused. nginx refuses a request line or a header line over 8 KiB and a
head over 32 KiB; this does the same, line by line, as the bytes come in.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.front.errors import ErrorType


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """The most bytes a request line, one header line and the whole head may take."""

    request_line: int
    header_line: int
    head: int


@dataclass(frozen=True, slots=True)
class HeadRefusal:
    """Why a head was refused: the error and a message safe to return."""

    error_type: ErrorType
    message: str


class HeadScanner:
    """Follows one connection's request heads through the chunks the socket delivers.

    `feed` is given each chunk before the parser; it answers a refusal once a line or the head
    passes its limit, and stops looking at the end of the head (an empty line), until `expect_head`
    says the next request's head comes.
    """

    __slots__ = ("limits", "reading", "_head", "_line", "_lines")

    def __init__(self, limits: HeadLimits) -> None:
        self.limits = limits
        self.reading = True  # a connection starts with a head
        self._head = 0  # bytes of this head so far
        self._line = 0  # bytes of its unfinished line
        self._lines = 0  # lines finished, the request line first

    def expect_head(self) -> None:
        """The last request's message is complete: what comes next is a new head."""
        self.reading = True
        self._head = self._line = self._lines = 0

    def feed(self, data: bytes) -> HeadRefusal | None:
        """Account for `data`; a refusal if a limit is passed. Bytes after the head are not looked at."""
        limits = self.limits
        if not self._head:
            # The usual request: a whole head, shorter than any one line may be, in one chunk.
            end = data.find(b"\r\n\r\n")
            if 0 < end < limits.header_line and end < limits.request_line:
                self.reading = False
                return None
        start = 0
        while True:
            newline = data.find(b"\n", start)
            taken = (len(data) if newline < 0 else newline + 1) - start
            self._head += taken
            line = self._line + taken
            if line > (limits.request_line if self._lines == 0 else limits.header_line) + 2:  # its CRLF
                return _line_refusal(self._lines, limits)
            if self._head > limits.head:
                return HeadRefusal(
                    ErrorType.HEADERS_TOO_LARGE, f"request head over {limits.head} bytes; connection closed"
                )
            if newline < 0:
                self._line = line
                return None
            self._line = 0
            start = newline + 1
            # An empty line (CRLF or LF); or one byte and LF, which the parser refuses as it reads it.
            if line <= 2:
                if self._lines:  # the end of the head: the rest is body
                    self.reading = False
                    return None
                # Empty lines before a request line are skipped (RFC 9112 2.2), but still count
                # towards the head: an endless run of them is refused, not looped over for ever.
                continue
            self._lines += 1


def _line_refusal(lines: int, limits: HeadLimits) -> HeadRefusal:
    if lines == 0:
        return HeadRefusal(
            ErrorType.URI_TOO_LONG,
            f"request line over {limits.request_line} bytes (method, target and version); connection closed",
        )
    return HeadRefusal(
        ErrorType.HEADERS_TOO_LARGE,
        f"a request header line over {limits.header_line} bytes; connection closed",
    )
