"""Slow clients: bodies that trickle in hold no admission slot and are cut with 408."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import httpx

from load_tests.server import running_service
from tests.conftest import Built
from tests.service.conftest import sample

HEAD = (
    b"POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
)


def read_to_close(conn: socket.socket) -> bytes:
    answer = b""
    while chunk := conn.recv(4096):
        answer += chunk
    return answer


def test_trickling_bodies_leave_normal_requests_answered_get_408(small_model: Built, tmp_path: Path) -> None:
    # 4 slots in all; 12 clients announce 2000 bytes and send one byte at a time.
    env = {"TEXTCLF_MAX_IN_FLIGHT": "4", "TEXTCLF_REQUEST_READ_TIMEOUT_SECONDS": "3"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        trickles = [socket.create_connection(("127.0.0.1", svc.port), timeout=20) for _ in range(12)]
        try:
            for conn in trickles:
                conn.sendall(HEAD + b"{")
            statuses = []
            for i in range(8):  # while they trickle, inside their deadline
                for conn in trickles:
                    conn.sendall(b" ")
                response = httpx.post(svc.url + "/v1/classify", json={"text": f"normal {i}"}, timeout=10)
                statuses.append(response.status_code)
                time.sleep(0.1)  # the trickle's pace (the behaviour under test)
            assert statuses == [200] * 8
            # Past the deadline each trickling request is answered 408 and its connection closed.
            for conn in trickles:
                answer = read_to_close(conn)
                assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
                assert b'"error_type":"request_timeout"' in answer
        finally:
            for conn in trickles:
                conn.close()
        assert sample(svc, "textclf_errors_total", error_type="request_timeout") == 12
        assert httpx.post(svc.url + "/v1/classify", json={"text": "after"}, timeout=10).status_code == 200


def test_headers_that_never_finish_get_408_and_a_silent_connection_is_closed(
    small_model: Built, tmp_path: Path
) -> None:
    env = {"TEXTCLF_REQUEST_READ_TIMEOUT_SECONDS": "2"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        silent = socket.create_connection(("127.0.0.1", svc.port), timeout=20)
        trickles = [socket.create_connection(("127.0.0.1", svc.port), timeout=20) for _ in range(6)]
        # A kept-alive connection is timed again from the first byte of its next request.
        kept = socket.create_connection(("127.0.0.1", svc.port), timeout=20)
        kept.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        first = b""
        while not first.endswith(b"}"):
            first += kept.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 ")
        try:
            kept.sendall(b"GET /health/live HTTP/1.1\r\n")
            for conn in trickles:
                conn.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: t\r\n")
            statuses: list[int] = []
            answers: dict[socket.socket, bytes] = {}
            # Each sends another header line every 0.25 s, for ever: until the server cuts it. One
            # whose deadline restarted at each line would never be cut (the bound only ends the test).
            line, deadline = 0, time.monotonic() + 60
            while len(answers) < len(trickles) or line < 6:
                assert time.monotonic() < deadline, f"{len(trickles) - len(answers)} trickles never cut"
                for conn in trickles:
                    if conn in answers:
                        continue
                    if select.select([conn], [], [], 0)[0]:  # answered: the server cut it
                        answers[conn] = read_to_close(conn)
                    else:
                        conn.sendall(f"X-Slow-{line}: yes\r\n".encode())
                if line < 6:  # normal requests meanwhile
                    statuses.append(
                        httpx.post(svc.url + "/v1/classify", json={"text": f"normal {line}"}).status_code
                    )
                line += 1
                time.sleep(0.25)  # the trickle's pace (the behaviour under test)
            assert statuses == [200] * 6
            for answer in [*answers.values(), read_to_close(kept)]:
                assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
                assert b'"error_type":"request_timeout"' in answer
            assert read_to_close(silent) == b""  # nothing was asked, so nothing is answered
        finally:
            for conn in [silent, kept, *trickles]:
                conn.close()
        assert sample(svc, "textclf_errors_total", error_type="request_timeout") == 7
        assert httpx.post(svc.url + "/v1/classify", json={"text": "after"}).status_code == 200


def test_connections_over_the_cap_are_refused_503_and_closed(small_model: Built, tmp_path: Path) -> None:
    env = {"TEXTCLF_MAX_CONNECTIONS": "4", "TEXTCLF_REQUEST_READ_TIMEOUT_SECONDS": "60"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        held = [socket.create_connection(("127.0.0.1", svc.port), timeout=20) for _ in range(4)]
        try:
            for conn in held:  # answered, so accepted by the server; then held mid-request
                conn.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
                assert conn.recv(4096).startswith(b"HTTP/1.1 200 ")
                conn.sendall(b"GET /health/live HTTP/1.1\r\n")
            refused = httpx.post(svc.url + "/v1/classify", json={"text": "one too many"})
            assert refused.status_code == 503
            assert refused.json()["error_type"] == "too_many_connections"
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["connection"] == "close"
        finally:
            for conn in held:
                conn.close()
        # Until the server has seen them close, a new connection may still be one too many.
        refused_meanwhile, deadline = 0, time.monotonic() + 30
        while (again := httpx.post(svc.url + "/v1/classify", json={"text": "room again"})).status_code == 503:
            refused_meanwhile += 1
            assert time.monotonic() < deadline, "the closed connections were never released"
        assert again.status_code == 200
        assert sample(svc, "textclf_errors_total", error_type="too_many_connections") == 1 + refused_meanwhile
