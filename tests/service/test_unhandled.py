"""What no handler took: a client that hangs up mid-body, and a fault inside the model."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx

from load_tests.server import running_service
from tests.conftest import Built
from tests.service.conftest import misbuilt_copy, sample, wait_for_sample


def log_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for line in log.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            lines.append({"message": line})
    return lines


def test_a_client_hanging_up_mid_body_is_one_line_and_no_server_error(
    small_model: Built, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    with running_service(small_model.artifact, log, workers=1) as svc:
        with socket.create_connection(("127.0.0.1", svc.port)) as conn:
            conn.sendall(
                b"POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"X-Request-ID: hung-up-1\r\nContent-Length: 1000\r\n\r\n" + b'{"text": "half a bo'
            )
        wait_for_sample(svc, "textclf_errors_total", 1, error_type="client_closed_request")
        assert sample(svc, "textclf_errors_total", error_type="internal_error") == 0
        route = {"route": "/v1/classify"}
        assert sample(svc, "textclf_request_duration_seconds_count", status_class="5xx", **route) == 0
        assert sample(svc, "textclf_request_duration_seconds_count", status_class="4xx", **route) == 1
    lines = [line for line in log_lines(log) if line.get("request_id") == "hung-up-1"]
    assert [line["message"] for line in lines] == ["client closed the connection before its request was read"]
    assert "Traceback" not in log.read_text()


def test_a_fault_in_the_model_is_a_500_with_the_request_id_logged_once(
    small_model: Built, tmp_path: Path
) -> None:
    artifact = misbuilt_copy(small_model, tmp_path / "artifact")
    log = tmp_path / "service.log"
    # No warm-up: at the manifest's max length it would fail, and so would start-up.
    with running_service(artifact, log, workers=1, env={"TEXTCLF_WARMUP_RUNS": "0"}) as svc:
        assert httpx.post(svc.url + "/v1/classify", json={"text": "short is fine"}).status_code == 200
        response = httpx.post(
            svc.url + "/v1/classify",
            json={"text": "word " * 1500},
            headers={"X-Request-ID": "fault-500-1"},
            timeout=30,
        )
        assert response.status_code == 500
        assert response.json() == {"error": "internal server error", "error_type": "internal_error"}
        assert response.headers["x-request-id"] == "fault-500-1"
        assert sample(svc, "textclf_errors_total", error_type="internal_error") == 1
    lines = log_lines(log)
    front = [line for line in lines if line.get("request_id") == "fault-500-1"]
    assert len(front) == 1 and "Traceback" in front[0]["exception"], front
    # Nothing else logged it a second time (Starlette's or uvicorn's own last resort).
    assert not [line for line in lines if "Exception in ASGI application" in line["message"]]
