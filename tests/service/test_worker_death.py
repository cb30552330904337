"""A worker killed with SIGKILL is replaced, the other keeps serving, and metrics stay right."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from load_tests.server import RunningService, running_service
from tests.conftest import Built


def sample(svc: RunningService, name: str, **labels: str) -> float:
    text = httpx.get(svc.url + "/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_killed_worker_is_replaced_and_counters_keep_counting(small_model: Built, tmp_path: Path) -> None:
    requests = "textclf_request_duration_seconds_count"
    labels = {"route": "/v1/classify", "status_class": "2xx"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=2) as svc:
        for _ in range(20):
            assert httpx.post(svc.url + "/v1/classify", json={"text": f"t {uuid.uuid4()}"}).status_code == 200
        assert sample(svc, requests, **labels) == 20
        victim, survivor = svc.worker_pids()
        os.kill(victim, signal.SIGKILL)
        # The survivor answers while the supervisor replaces the dead worker.
        for _ in range(10):
            assert httpx.post(svc.url + "/v1/classify", json={"text": f"t {uuid.uuid4()}"}).status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = svc.worker_pids()
            if len(pids) == 2 and victim not in pids and sample(svc, "textclf_workers_ready") == 2:
                break
            time.sleep(0.2)
        assert survivor in svc.worker_pids() and victim not in svc.worker_pids()
        # The dead worker's readiness is dropped (not 3), its requests still count (not < 30).
        assert sample(svc, "textclf_workers_ready") == 2
        assert sample(svc, requests, **labels) == 30
        assert (
            len(
                [
                    line
                    for line in httpx.get(svc.url + "/metrics").text.splitlines()
                    if line.startswith("textclf_process_resident_memory_bytes{")
                ]
            )
            == 2
        )
