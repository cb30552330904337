"""Request heads are bounded while they arrive: a huge request line or header is refused after a
few KiB, on real sockets, and the bytes the HTTP process read are counted from /proc."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from load_tests.server import RunningService
from tests.service.conftest import classify, sample

HUGE = 32 * 2**20  # what the attacker sends; the server may read a few of its chunks
READ_AT_MOST = 2**20


def bytes_read(pid: int) -> int:
    """Bytes the process has read with read(2) so far: sockets included (/proc/PID/io, rchar)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no rchar in /proc/{pid}/io")


def flood(port: int, head: bytes, size: int) -> tuple[int, bytes]:
    """Send `head` and `size` more bytes as fast as the socket takes them, then read the answer:
    the bytes that left, and what came back."""
    payload = memoryview(head + b"a" * size)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        try:
            while sent < len(payload):
                sent += conn.send(payload[sent : sent + 65536])
        except OSError:  # the server closed the connection: the point
            pass
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return sent, answer


@pytest.mark.parametrize(
    ("head", "status", "error_type"),
    [
        (b"GET /v1/", b"414", b"uri_too_long"),
        (b"POST /v1/classify HTTP/1.1\r\nHost: t\r\nX-Filler: ", b"431", b"headers_too_large"),
    ],
    ids=["request target", "header value"],
)
def test_a_32_mb_head_is_refused_after_reading_a_few_kib_of_it(
    service: RunningService, head: bytes, status: bytes, error_type: bytes
) -> None:
    [front] = service.http_pids()
    refused = sample(service, "textclf_errors_total", error_type=error_type.decode())
    before = bytes_read(front)
    sent, answer = flood(service.port, head, HUGE)
    read = bytes_read(front) - before
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
    assert b'"error_type":"' + error_type + b'"' in answer
    assert b"connection: close" in answer.lower()
    assert read < READ_AT_MOST, f"the HTTP process read {read} bytes of a {HUGE}-byte head"
    assert sent < HUGE, "the whole head was taken before the refusal"
    assert sample(service, "textclf_errors_total", error_type=error_type.decode()) == refused + 1
    assert classify(service, "still answered").status_code == 200


def test_the_refusal_comes_while_the_head_is_still_arriving(service: RunningService) -> None:
    # 64 KiB of a request line that never ends: the answer comes without the rest, and the
    # process read no more than was sent.
    [front] = service.http_pids()
    before = bytes_read(front)
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as conn:
        part = b"GET /" + b"a" * 65536
        conn.sendall(part)
        answer = conn.recv(65536)
        read = bytes_read(front) - before
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]
    assert read <= len(part) + 4096  # what was sent, and a little of the process's own reads


def test_heads_at_the_limits_are_served(service: RunningService) -> None:
    # The defaults: an 8 KiB request line, 8 KiB header lines, a 32 KiB head.
    long_path = "/v1/classify?" + "q" * (8192 - len("POST /v1/classify? HTTP/1.1"))
    headers = {f"x-filler-{i}": "v" * 7000 for i in range(3)}
    response = httpx.post(service.url + long_path, json={"text": "fine"}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def read_response(conn: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length: its status line and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"closed after {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(b":")[1]
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head.split(b"\r\n")[0], body


def post(text: str) -> tuple[bytes, bytes]:
    """A classify request's head and body, the body as bytes."""
    body = b'{"text": "' + text.encode() + b'"}'
    head = b"POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body), body


def test_a_later_request_on_a_kept_alive_connection_is_bounded_too(service: RunningService) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as conn:
        conn.sendall(b"".join(post("first")))
        assert read_response(conn)[0].startswith(b"HTTP/1.1 200 ")
        conn.sendall(b"GET /" + b"a" * 65536)
        assert conn.recv(65536).startswith(b"HTTP/1.1 414 ")


def test_cr_and_lf_before_the_request_line_do_not_hide_it(service: RunningService) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as conn:
        conn.sendall(b"\n\r\n\r\r\nGET /" + b"a" * 65536)
        assert conn.recv(65536).startswith(b"HTTP/1.1 414 ")


def test_a_pipelined_request_whose_body_comes_later_is_served(service: RunningService) -> None:
    # The second request's head arrives with the first request, its long body (no line break) only
    # once the first is answered: that body is no request line to refuse.
    head, body = post("b" * 9000)
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as conn:
        conn.sendall(b"".join(post("first")) + head + body[:10])
        assert read_response(conn)[0].startswith(b"HTTP/1.1 200 ")
        conn.sendall(body[10:])
        status, answer = read_response(conn)
    assert status.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_huge_trailer_fields_after_a_chunked_body_are_refused(service: RunningService) -> None:
    [front] = service.http_pids()
    refused = sample(service, "textclf_errors_total", error_type="headers_too_large")
    before = bytes_read(front)
    head = b"POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    chunked = (
        head + b"Transfer-Encoding: chunked\r\n\r\n10\r\n" + b'{"text": "hello"}'[:16] + b"\r\n0\r\nX-T: "
    )
    sent, _ = flood(service.port, chunked, HUGE)
    read = bytes_read(front) - before
    assert read < READ_AT_MOST, f"the HTTP process read {read} bytes of a {HUGE}-byte trailer"
    assert sent < HUGE, "the whole trailer was taken"
    assert sample(service, "textclf_errors_total", error_type="headers_too_large") == refused + 1
