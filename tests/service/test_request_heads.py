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
