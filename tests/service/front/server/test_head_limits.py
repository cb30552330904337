"""The request head bounds, in process: the scanner over every way the socket may cut a head."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.config import Settings
from service.front.core.errors import ErrorType
from service.front.server.head_limits import HeadLimits, HeadScanner

LIMITS = HeadLimits(request_line=100, header_line=50, head=200)
HEAD = b"POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n"


def fed(scanner: HeadScanner, data: bytes, chunk: int) -> ErrorType | None:
    """Feed `data` in pieces of `chunk` bytes; the first refusal's error, if any."""
    for start in range(0, len(data), chunk):
        refusal = scanner.feed(data[start : start + chunk])
        if refusal is not None:
            return refusal.error_type
        if not scanner.reading:
            return None
    return None


@pytest.mark.parametrize("chunk", [1, 2, 7, 1000])
def test_a_head_within_limits_passes_however_it_is_cut_and_the_body_is_not_counted(chunk: int) -> None:
    scanner = HeadScanner(LIMITS)
    # The body after the head is as long as the head limit: it is not the head's.
    assert fed(scanner, HEAD + b"{}" * 200, chunk) is None
    assert not scanner.reading


@pytest.mark.parametrize("chunk", [1, 3, 64, 100_000])
def test_a_long_request_line_is_414_before_its_end(chunk: int) -> None:
    scanner = HeadScanner(LIMITS)
    assert fed(scanner, b"GET /" + b"a" * 10_000, chunk) is ErrorType.URI_TOO_LONG


@pytest.mark.parametrize("chunk", [1, 5, 64, 100_000])
def test_a_long_header_line_is_431_before_its_end(chunk: int) -> None:
    scanner = HeadScanner(LIMITS)
    assert fed(scanner, b"GET / HTTP/1.1\r\nX-A: " + b"a" * 10_000, chunk) is ErrorType.HEADERS_TOO_LARGE


def test_many_short_header_lines_are_431_past_the_head_limit() -> None:
    scanner = HeadScanner(LIMITS)
    assert fed(scanner, b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 1000, 13) is ErrorType.HEADERS_TOO_LARGE


def test_lines_at_their_limits_pass() -> None:
    line = b"GET /" + b"a" * (LIMITS.request_line - len(b"GET / HTTP/1.1")) + b" HTTP/1.1\r\n"
    header = b"X: " + b"b" * (LIMITS.header_line - 3) + b"\r\n"
    assert len(line) == LIMITS.request_line + 2 and len(header) == LIMITS.header_line + 2
    for chunk in (1, 1000):
        scanner = HeadScanner(LIMITS)
        assert fed(scanner, line + header + b"\r\n", chunk) is None
        assert not scanner.reading


def test_empty_lines_before_the_request_line_do_not_end_the_head() -> None:
    scanner = HeadScanner(LIMITS)
    assert fed(scanner, b"\r\n\r\n\r\nGET /" + b"a" * 10_000, 4) is ErrorType.URI_TOO_LONG


@pytest.mark.parametrize("prefix", [b"\r\n", b"\n\r\n\r\n", b"\r\r\n", b"\r\n\r\n\r\n"])
@pytest.mark.parametrize("chunk", [1, 2, 3, 64])
def test_cr_and_lf_before_a_request_line_neither_end_the_head_nor_hide_it(prefix: bytes, chunk: int) -> None:
    # The parser skips them; a scanner that took them for the head's end would stop looking.
    scanner = HeadScanner(LIMITS)
    assert fed(scanner, prefix + b"GET /" + b"a" * 10_000, chunk) is ErrorType.URI_TOO_LONG
    scanner = HeadScanner(LIMITS)
    assert fed(scanner, prefix + HEAD, chunk) is None
    assert not scanner.reading


def test_a_blank_line_cut_between_its_cr_and_lf_ends_the_head() -> None:
    scanner = HeadScanner(LIMITS)
    head, rest = HEAD[:-1], HEAD[-1:]
    assert scanner.feed(head) is None and scanner.reading
    assert scanner.feed(rest + b"{" * 1000) is None  # the body after it is not counted
    assert not scanner.reading


def test_a_line_of_one_byte_is_no_blank_line() -> None:
    scanner = HeadScanner(LIMITS)
    assert fed(scanner, b"GET / HTTP/1.1\r\na\n" + b"X: " + b"b" * 10_000, 7) is ErrorType.HEADERS_TOO_LARGE


def test_an_endless_run_of_empty_lines_is_431_past_the_head_limit() -> None:
    scanner = HeadScanner(LIMITS)
    assert fed(scanner, b"\r\n" * 10_000, 64) is ErrorType.HEADERS_TOO_LARGE


def test_the_next_request_on_a_connection_is_bounded_too() -> None:
    scanner = HeadScanner(LIMITS)
    assert fed(scanner, HEAD, len(HEAD)) is None
    scanner.expect_head()
    assert fed(scanner, b"GET /" + b"a" * 10_000, 512) is ErrorType.URI_TOO_LONG


def test_settings_refuse_a_head_bound_below_a_line_bound() -> None:
    with pytest.raises(ValidationError, match="max_head_bytes"):
        Settings(max_head_bytes=4096, max_header_line_bytes=8192)
