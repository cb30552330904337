"""Slow clients: bodies that trickle in hold no admission slot and are cut with 408."""

from __future__ import annotations

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


def test_trickling_bodies_leave_normal_requests_answered_get_408(small_model: Built, tmp_path: Path) -> None:
    # 4 slots in all; 12 clients announce 2000 bytes and send one byte at a time.
    env = {"TEXTCLF_MAX_IN_FLIGHT": "4", "TEXTCLF_REQUEST_READ_TIMEOUT_SECONDS": "3"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        port = int(svc.url.rsplit(":", 1)[1])
        trickles = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(12)]
        try:
            for conn in trickles:
                conn.sendall(HEAD + b"{")
            statuses = []
            for i in range(8):  # while they trickle, inside their deadline
                for conn in trickles:
                    conn.sendall(b" ")
                response = httpx.post(svc.url + "/v1/classify", json={"text": f"normal {i}"}, timeout=10)
                statuses.append(response.status_code)
                time.sleep(0.1)
            assert statuses == [200] * 8
            # Past the deadline each trickling request is answered 408 and its connection closed.
            for conn in trickles:
                answer = b""
                while chunk := conn.recv(4096):
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
                assert b'"error_type":"request_timeout"' in answer
        finally:
            for conn in trickles:
                conn.close()
        assert sample(svc, "textclf_errors_total", error_type="request_timeout") == 12
        assert httpx.post(svc.url + "/v1/classify", json={"text": "after"}, timeout=10).status_code == 200
