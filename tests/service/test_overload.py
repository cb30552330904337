"""Overload: a burst far above what a worker holds gets 200s and fast rejections with Retry-After,
never an unbounded queue, and the service answers normally right after."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import httpx

from load_tests.burst import send_at_once
from load_tests.client import Response
from load_tests.server import RunningService, running_service
from tests.conftest import Built
from tests.service.conftest import sample


def burst(svc: RunningService, n: int) -> dict[int, list[tuple[Response, float]]]:
    """n unique texts sent at once (load_tests.burst), grouped by status; no connection may break."""
    by_status: dict[int, list[tuple[Response, float]]] = {}
    for response, seconds in send_at_once(svc.url, n, timeout=60):
        assert response is not None, "a connection broke or timed out"
        by_status.setdefault(response.status, []).append((response, seconds))
    return by_status


def assert_recovers(svc: RunningService) -> None:
    response = httpx.post(svc.url + "/v1/classify", json={"text": "after the burst"}, timeout=10)
    assert response.status_code == 200
    assert httpx.get(svc.url + "/health/ready", timeout=10).status_code == 200


def test_burst_beyond_the_in_flight_limit_gets_fast_429s(small_model: Built, tmp_path: Path) -> None:
    env = {"TEXTCLF_MAX_IN_FLIGHT": "4", "TEXTCLF_CACHE_ENTRIES": "0"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        by_status = burst(svc, 120)
        assert set(by_status) == {200, 429}, {s: r[0][0].body[:300] for s, r in by_status.items()}
        for response, _ in by_status[429]:
            assert response.headers[b"retry-after"] == b"1"
            assert json.loads(response.body)["error_type"] == "overloaded"
        # A rejection is answered without queueing: faster than an admitted request, same run.
        assert statistics.median(s for _, s in by_status[429]) < statistics.median(
            s for _, s in by_status[200]
        )
        for response, _ in by_status[200]:  # each admitted text was computed (the cache is off)
            assert response.headers[b"x-cache"] == b"miss"
            assert float(response.headers[b"x-inference-time"]) > 0
        assert sample(svc, "textclf_errors_total", error_type="overloaded") == len(by_status[429])
        assert_recovers(svc)
        # The in-flight gauge came back to zero: nothing leaked by the rejections.
        assert sample(svc, "textclf_in_flight_requests") == 0


def test_a_miss_that_waited_past_the_deadline_is_not_computed(small_model: Built, tmp_path: Path) -> None:
    env = {"TEXTCLF_MAX_IN_FLIGHT": "1000", "TEXTCLF_QUEUE_TIMEOUT_SECONDS": "0.001"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        by_status = burst(svc, 40)
        assert set(by_status) == {200, 503}, {s: len(r) for s, r in by_status.items()}
        for response, _ in by_status[503]:
            assert response.headers[b"retry-after"] == b"1"
            assert json.loads(response.body)["error_type"] == "queue_timeout"
        timed_out = len(by_status[503])
        assert sample(svc, "textclf_errors_total", error_type="queue_timeout") == timed_out
        # Only computed texts were counted as predictions.
        assert sample(svc, "textclf_predictions_total") == len(by_status[200])
        assert_recovers(svc)
