"""Bounds on a request's head, checked on the bytes as they arrive, before the HTTP parser sees them.

With httptools, uvicorn grows the request target (`self.url += url`) and httptools each header
value by concatenation, with no limit: a 32 MB target is read in full, in quadratic copies,
before the request is refused. nginx refuses a request line or a header line over 8 KiB and a
head over 32 KiB; this does the same, line by line, as the bytes come in.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.front.core.errors import ErrorType


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
    passes its limit, and stops looking at the end of the head (a blank line), until `expect_head`
    says the next request's head comes. The protocol also stops it when the parser says the head
    ended, and re-arms it when the parser is in a head it does not follow.
    """

    __slots__ = ("limits", "reading", "_head", "_line", "_lines", "_cr")

    def __init__(self, limits: HeadLimits) -> None:
        self.limits = limits
        self.reading = True  # a connection starts with a head
        self._head = 0  # bytes of this head so far
        self._line = 0  # bytes of its unfinished line
        self._lines = 0  # lines finished, the request line first
        self._cr = False  # the unfinished line is one CR so far

    def expect_head(self) -> None:
        """The last request's message is complete: what comes next is a new head."""
        self.reading = True
        self._head = self._line = self._lines = 0
        self._cr = False

    def feed(self, data: bytes) -> HeadRefusal | None:
        """Account for `data`; a refusal if a limit is passed. Bytes after the head are not looked at."""
        limits = self.limits
        start = 0
        if not self._lines and not self._line:
            # CR and LF bytes before a request line are skipped by the parser (RFC 9112 2.2): here
            # too, and counted, so that they can neither end the head early nor go on for ever.
            fresh = not self._head
            start = len(data) - len(data.lstrip(b"\r\n"))
            self._head += start
            if self._head > limits.head:
                return _head_refusal(limits)
            if fresh:
                # The usual request: a whole head, shorter than any one line may be, in one chunk.
                end = data.find(b"\r\n\r\n", start)
                if 0 <= end - start < min(limits.header_line, limits.request_line):
                    self.reading = False
                    return None
        while start < len(data):
            newline = data.find(b"\n", start)
            taken = (len(data) if newline < 0 else newline + 1) - start
            # A blank line is CRLF or LF alone, its CR perhaps at the end of the last chunk.
            content = taken - 1
            blank = newline >= 0 and (
                (not self._line and (not content or (content == 1 and data[start] == 13)))
                or (self._cr and not content)
            )
            self._head += taken
            line = self._line + taken
            if line > (limits.request_line if self._lines == 0 else limits.header_line) + 2:  # its CRLF
                return _line_refusal(self._lines, limits)
            if self._head > limits.head:
                return _head_refusal(limits)
            if newline < 0:
                self._cr = not self._line and taken == 1 and data[start] == 13
                self._line = line
                return None
            self._line, self._cr = 0, False
            start = newline + 1
            if blank and self._lines:  # the end of the head: the rest is body
                self.reading = False
                return None
            self._lines += 1
        return None


def _head_refusal(limits: HeadLimits) -> HeadRefusal:
    message = f"request head over {limits.head} bytes; connection closed"
    return HeadRefusal(ErrorType.HEADERS_TOO_LARGE, message)


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
