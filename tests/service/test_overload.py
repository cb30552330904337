"""Overload: a burst far above what a worker holds gets 200s and fast rejections with Retry-After,
never an unbounded queue, and the service answers normally right after."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path

import httpx

from load_tests.server import RunningService, running_service
from tests.conftest import Built
from tests.service.conftest import sample


async def _burst(url: str, n: int) -> list[tuple[httpx.Response, float]]:
    """n unique texts sent at once, each on its own connection; (response, seconds) each."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(i: int) -> tuple[httpx.Response, float]:
            start = time.perf_counter()
            response = await client.post(url + "/v1/classify", json={"text": f"burst {i} {uuid.uuid4()}"})
            return response, time.perf_counter() - start

        return await asyncio.gather(*(one(i) for i in range(n)))


def burst(svc: RunningService, n: int) -> list[tuple[httpx.Response, float]]:
    return asyncio.run(_burst(svc.url, n))


def assert_recovers(svc: RunningService) -> None:
    response = httpx.post(svc.url + "/v1/classify", json={"text": "after the burst"}, timeout=10)
    assert response.status_code == 200
    assert httpx.get(svc.url + "/health/ready", timeout=10).status_code == 200


def test_burst_beyond_the_in_flight_limit_gets_fast_429s(small_model: Built, tmp_path: Path) -> None:
    env = {"TEXTCLF_MAX_IN_FLIGHT": "4", "TEXTCLF_CACHE_ENTRIES": "0"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        results = burst(svc, 120)
        by_status: dict[int, list[tuple[httpx.Response, float]]] = {}
        for response, seconds in results:
            by_status.setdefault(response.status_code, []).append((response, seconds))
        assert set(by_status) == {200, 429}, {s: r[0][0].text for s, r in by_status.items()}
        for response, _ in by_status[429]:
            assert response.headers["retry-after"] == "1"
            assert response.json()["error_type"] == "overloaded"
        # A rejection is answered without queueing: faster than an admitted request, same run.
        assert statistics.median(s for _, s in by_status[429]) < statistics.median(
            s for _, s in by_status[200]
        )
        # Never more than 4 admitted at once, so none waited behind more than 3 others' inference.
        for response, _ in by_status[200]:
            queue, inference = (
                float(response.headers["x-queue-time"]),
                float(response.headers["x-inference-time"]),
            )
            assert queue <= 1000  # the queue deadline (TEXTCLF_QUEUE_TIMEOUT_SECONDS=1) was never needed
            assert inference > 0
        assert sample(svc, "textclf_errors_total", error_type="overloaded") == len(by_status[429])
        assert_recovers(svc)
        # The in-flight gauge came back to zero: nothing leaked by the rejections.
        assert sample(svc, "textclf_in_flight_requests") == 0


def test_a_miss_that_waited_past_the_deadline_is_not_computed(small_model: Built, tmp_path: Path) -> None:
    env = {"TEXTCLF_MAX_IN_FLIGHT": "1000", "TEXTCLF_QUEUE_TIMEOUT_SECONDS": "0.001"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        results = burst(svc, 40)
        statuses = [r.status_code for r, _ in results]
        assert set(statuses) == {200, 503}, statuses
        for response, _ in results:
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
                assert response.json()["error_type"] == "queue_timeout"
        timed_out = statuses.count(503)
        assert sample(svc, "textclf_errors_total", error_type="queue_timeout") == timed_out
        # Only computed texts were counted as predictions.
        assert sample(svc, "textclf_predictions_total") == statuses.count(200)
        assert_recovers(svc)
