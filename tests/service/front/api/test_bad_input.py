"""The bad-input catalogue over real HTTP: each case gets its documented 4xx, or a correct answer
for valid odd text, and the worker stays healthy."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import httpx
import pytest

from load_tests.server import RunningService
from tests.service.conftest import JSON, classify

BAD_REQUESTS = [
    # (name, method, path, body bytes, headers, status, error_type)
    ("empty text", "POST", "/v1/classify", b'{"text": ""}', JSON, 422, "empty_text"),
    ("whitespace text", "POST", "/v1/classify", b'{"text": " \\n\\t "}', JSON, 422, "empty_text"),
    ("wrong type", "POST", "/v1/classify", b'{"text": 5}', JSON, 422, "validation_error"),
    ("null text", "POST", "/v1/classify", b'{"text": null}', JSON, 422, "validation_error"),
    ("missing field", "POST", "/v1/classify", b'{"txt": "a"}', JSON, 422, "validation_error"),
    ("not an object", "POST", "/v1/classify", b'["a"]', JSON, 422, "validation_error"),
    ("invalid json", "POST", "/v1/classify", b'{"text": ', JSON, 400, "invalid_json"),
    (
        "text too long",
        "POST",
        "/v1/classify",
        b'{"text": "' + b"a" * 10_001 + b'"}',
        JSON,
        422,
        "text_too_long",
    ),
    (
        "body too large",
        "POST",
        "/v1/classify",
        b'{"text": "' + b"a" * 1_100_000 + b'"}',
        JSON,
        413,
        "payload_too_large",
    ),
    (
        "wrong content type",
        "POST",
        "/v1/classify",
        b'{"text": "a"}',
        {"content-type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    ("no content type", "POST", "/v1/classify", b'{"text": "a"}', {}, 415, "unsupported_media_type"),
    ("wrong method", "GET", "/v1/classify", b"", {}, 405, "method_not_allowed"),
    ("unknown route", "GET", "/v1/nothing", b"", {}, 404, "not_found"),
    (
        "too many texts",
        "POST",
        "/v1/classify/batch",
        b'{"texts": [' + b",".join([b'"a"'] * 65) + b"]}",
        JSON,
        422,
        "too_many_texts",
    ),
    ("empty batch", "POST", "/v1/classify/batch", b'{"texts": []}', JSON, 422, "empty_text"),
    (
        "blank item in batch",
        "POST",
        "/v1/classify/batch",
        b'{"texts": ["ok", "  "]}',
        JSON,
        422,
        "empty_text",
    ),
    ("texts not a list", "POST", "/v1/classify/batch", b'{"texts": "abc"}', JSON, 422, "validation_error"),
    ("invalid UTF-8", "POST", "/v1/classify", b'{"text": "caf\xe9 \xff"}', JSON, 400, "invalid_json"),
    ("lone surrogate", "POST", "/v1/classify", b'{"text": "a \\ud800 b"}', JSON, 400, "invalid_json"),
    ("NaN", "POST", "/v1/classify", b'{"text": NaN}', JSON, 400, "invalid_json"),
    (
        "Infinity elsewhere",
        "POST",
        "/v1/classify",
        b'{"text": "a", "x": Infinity}',
        JSON,
        400,
        "invalid_json",
    ),
    ("byte order mark", "POST", "/v1/classify", b'\xef\xbb\xbf{"text": "a"}', JSON, 400, "invalid_json"),
    ("deeply nested", "POST", "/v1/classify", b"[" * 100_000 + b"]" * 100_000, JSON, 400, "invalid_json"),
    (
        "nested in a field",
        "POST",
        "/v1/classify",
        b'{"text": "a", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        JSON,
        400,
        "invalid_json",
    ),
    ("extra field", "POST", "/v1/classify", b'{"text": "a", "lang": "en"}', JSON, 422, "validation_error"),
    (
        "batch shape on single route",
        "POST",
        "/v1/classify",
        b'{"texts": ["a"]}',
        JSON,
        422,
        "validation_error",
    ),
    ("NUL only", "POST", "/v1/classify", b'{"text": "\\u0000\\u0007"}', JSON, 422, "empty_text"),
    (
        "zero-width only",
        "POST",
        "/v1/classify",
        json.dumps({"text": "\u200b\ufeff\u200d"}).encode(),
        JSON,
        422,
        "empty_text",
    ),
    (
        "1 MB text",
        "POST",
        "/v1/classify",
        json.dumps({"text": "ab " * 333_000}).encode(),
        JSON,
        422,
        "text_too_long",
    ),
    (
        "10 MB body",
        "POST",
        "/v1/classify",
        b'{"text": "' + b"a" * 10_000_000 + b'"}',
        JSON,
        413,
        "payload_too_large",
    ),
    (
        "huge batch",
        "POST",
        "/v1/classify/batch",
        json.dumps({"texts": ["a"] * 100_000}).encode(),
        JSON,
        422,
        "too_many_texts",
    ),
    ("big number", "POST", "/v1/classify", b'{"text": 1' + b"0" * 5000 + b"}", JSON, 400, "invalid_json"),
    (
        "wrong method on batch",
        "PUT",
        "/v1/classify/batch",
        b'{"texts": ["a"]}',
        JSON,
        405,
        "method_not_allowed",
    ),
    ("PUT with a body elsewhere", "PUT", "/health/live", b"{}", JSON, 405, "method_not_allowed"),
    ("POST to an unknown route", "POST", "/v1/nothing", b'{"text": "a"}', {}, 404, "not_found"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "error_type"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_get_a_clear_4xx(
    service: RunningService,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    error_type: str,
) -> None:
    response = httpx.request(method, service.url + path, content=body, headers=headers, timeout=30)
    assert response.status_code == status
    assert response.json()["error_type"] == error_type
    assert set(response.json()) == {"error", "error_type"}
    assert "Traceback" not in response.text
    assert httpx.get(service.url + "/health/ready", timeout=10).status_code == 200


ODD_BUT_VALID = {
    "emoji": "I love it 😍🔥👨‍👩‍👧",
    "combining marks": "cafe\u0301 tre\u0300s bien Z\u0351\u0352\u0353",
    "right to left": "אני אוהב את זה مرحبا بك \u202eevil",
    "NUL and escapes inside": "good\u0000 day \u001b[31m red",
    "CJK": "我喜欢这个产品",
    "one letter": "a",
}


@pytest.mark.parametrize("text", ODD_BUT_VALID.values(), ids=ODD_BUT_VALID.keys())
def test_odd_but_valid_text_gets_a_classification(service: RunningService, text: str) -> None:
    first = classify(service, text)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["label"] in body["scores"] and abs(sum(body["scores"].values()) - 1) < 1e-4
    # The same text, as the client sent it, is the same cache entry.
    assert classify(service, text).json()["scores"] == body["scores"]


def test_chunked_10_mb_body_is_refused(service: RunningService) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(160):  # 10 MB in 64 KiB chunks, no Content-Length: counted as it arrives
            yield b"a" * 65536

    response = httpx.post(service.url + "/v1/classify", content=chunks(), headers=JSON, timeout=60)
    assert response.status_code == 413
    assert response.json()["error_type"] == "payload_too_large"
    assert httpx.get(service.url + "/health/ready", timeout=10).status_code == 200


@pytest.mark.parametrize("chunked", [False, True])
def test_a_client_sending_its_whole_body_first_reads_the_413(service: RunningService, chunked: bool) -> None:
    # http.client writes the whole body before it reads: a server that closed on the first bytes
    # of a refused body would reset the connection under it, and it would never see the 413.
    # 8 MiB: over the 1 MiB limit and more than loopback's socket buffers hold for the server.
    body = b'{"text": "' + b"a" * (8 * 2**20) + b'"}'
    host, port = service.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        if chunked:
            pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
            connection.request("POST", "/v1/classify", pieces, JSON, encode_chunked=True)
        else:
            connection.request("POST", "/v1/classify", body, JSON)
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error_type"] == "payload_too_large"
    finally:
        connection.close()
