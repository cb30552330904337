"""A model worker killed with SIGKILL is replaced, its job retried, and metrics stay right."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx

from load_tests.server import running_service
from tests.conftest import Built
from tests.service.conftest import sample
from tests.support.waiting import wait_until


def test_killed_worker_is_replaced_and_counters_keep_counting(small_model: Built, tmp_path: Path) -> None:
    requests = "textclf_request_duration_seconds_count"
    labels = {"route": "/v1/classify", "status_class": "2xx"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=2) as svc:
        for _ in range(20):
            assert httpx.post(svc.url + "/v1/classify", json={"text": f"t {uuid.uuid4()}"}).status_code == 200
        assert sample(svc, requests, **labels) == 20
        victim, survivor = svc.model_worker_pids()
        os.kill(victim, signal.SIGKILL)
        # The survivor answers while the front replaces the dead worker.
        for _ in range(10):
            assert httpx.post(svc.url + "/v1/classify", json={"text": f"t {uuid.uuid4()}"}).status_code == 200

        def replaced() -> bool:
            pids = svc.model_worker_pids()
            return len(pids) == 2 and victim not in pids and sample(svc, "textclf_workers_ready") == 2

        wait_until(replaced, "the killed worker replaced and ready")
        assert survivor in svc.model_worker_pids() and victim not in svc.model_worker_pids()
        # The dead worker's readiness is dropped (not 3), the requests all count.
        assert sample(svc, "textclf_workers_ready") == 2
        assert sample(svc, requests, **labels) == 30
        assert sample(svc, "textclf_model_worker_restarts_total") == 1
        assert (
            len(
                [
                    line
                    for line in httpx.get(svc.url + "/metrics").text.splitlines()
                    if line.startswith("textclf_process_resident_memory_bytes{")
                ]
            )
            == 3  # the front and its two model workers
        )


def test_model_worker_killed_under_load_loses_nothing(small_model: Built, tmp_path: Path) -> None:
    requests = "textclf_request_duration_seconds_count"
    labels = {"route": "/v1/classify", "status_class": "2xx"}
    users = 4
    with running_service(small_model.artifact, tmp_path / "service.log", workers=2) as svc:
        stop = threading.Event()
        outcomes: list[tuple[float, int | None]] = []  # (time, status) or (time, None) on a broken connection
        counts: list[float] = []

        def user() -> None:
            with httpx.Client(timeout=30) as client:  # keep-alive: bound to one worker until it breaks
                while not stop.is_set():
                    try:
                        status = client.post(
                            svc.url + "/v1/classify", json={"text": f"u {uuid.uuid4()}"}
                        ).status_code
                    except httpx.TransportError:
                        status = None
                    outcomes.append((time.monotonic(), status))

        def scraper() -> None:
            while not stop.is_set():
                try:
                    counts.append(sample(svc, requests, **labels))
                except httpx.TransportError:
                    pass  # a scrape the killed worker was answering, lost with it
                stop.wait(0.1)  # the scrape interval: a pace, not a wait for anything

        def answered(since: int, count: int) -> bool:
            return sum(1 for _, status in outcomes[since:] if status == 200) >= count

        threads = [threading.Thread(target=user) for _ in range(users)] + [threading.Thread(target=scraper)]
        for thread in threads:
            thread.start()
        wait_until(lambda: answered(0, 20) and len(counts) >= 2, "the load answered and scraped")
        victim, _ = svc.model_worker_pids()
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: victim not in svc.model_worker_pids() and sample(svc, "textclf_workers_ready") == 2,
            "the killed worker replaced and ready",
        )
        replaced, since, scraped = time.monotonic(), len(outcomes), len(counts)
        # The replaced pool under the same load: answers, and scrapes counting them.
        wait_until(
            lambda: answered(since, 20) and len(counts) >= scraped + 3, "answers after the replacement"
        )
        stop.set()
        for thread in threads:
            thread.join()
        final = sample(svc, requests, **labels)

    statuses = [s for _, s in outcomes]
    # The job the dead worker held was retried on the other: every request was answered.
    assert set(statuses) == {200}
    # The survivor kept answering while the replacement started.
    assert any(killed < t < replaced for t, _ in outcomes)
    # Counters never went backwards, and every 200 was counted.
    assert counts == sorted(counts) and len(counts) >= 5
    assert final == len(statuses)
