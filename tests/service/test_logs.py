"""Logs of the real service: one JSON object per line, request ids in and out, no request texts."""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path

import httpx

from load_tests.server import running_service
from service.logs import JsonFormatter
from tests.conftest import Built


def test_json_access_lines_carry_request_ids_and_never_texts(small_model: Built, tmp_path: Path) -> None:
    secret = f"private-{uuid.uuid4().hex}"
    log = tmp_path / "service.log"
    env = {"TEXTCLF_ACCESS_LOG": "true", "TEXTCLF_LOG_FORMAT": "json"}
    with running_service(small_model.artifact, log, workers=1, env=env) as svc:
        given = httpx.post(
            svc.url + "/v1/classify", json={"text": f"I love {secret}"}, headers={"x-request-id": "req-42"}
        )
        made = httpx.post(svc.url + "/v1/classify", json={"text": f"meh {secret}"})
        forged = httpx.post(
            svc.url + "/v1/classify",
            json={"text": f"x {secret}"},
            headers={"x-request-id": "a b\tc" + "x" * 200},
        )
        refused = httpx.post(svc.url + "/v1/classify", json={"text": f"{secret} " * 3000})
    assert given.headers["x-request-id"] == "req-42"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["x-request-id"])  # replaced, not echoed
    assert refused.status_code == 422

    text = log.read_text()
    assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    access = [line for line in lines if line["logger"] == "service.access"]
    by_id = {line["request_id"]: line for line in access}
    assert by_id["req-42"] | {"duration_ms": 0} == {
        "time": by_id["req-42"]["time"],
        "level": "info",
        "logger": "service.access",
        "message": "request",
        "request_id": "req-42",
        "method": "POST",
        "route": "/v1/classify",
        "status": 200,
        "duration_ms": 0,
    }
    assert by_id[refused.headers["x-request-id"]]["status"] == 422
    assert by_id[made.headers["x-request-id"]]["status"] == 200
    assert any("ready" in line["message"] for line in lines if line["logger"] == "service")


def test_json_lines_escape_c1_controls_and_line_separators() -> None:
    # NEL (U+0085) and U+2028 end a line for many readers; CSI (U+009B) and ESC drive a terminal.
    quoted = "a\x85b\x9b2Jc\x1b[2Jd\u2028e\x00f\x9f"
    record = logging.LogRecord("service", logging.WARNING, __file__, 1, "got %s", (quoted,), None)
    line = JsonFormatter().format(record)
    assert json.loads(line)["message"] == f"got {quoted}"
    assert line.splitlines() == [line]
    assert not [c for c in line if c < " " or "\x80" <= c <= "\x9f"]
    assert "\\u0085" in line and "\\u009b" in line
