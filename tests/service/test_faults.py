"""Faults an operator meets, on the real service: hung and killed model workers under load, a
model folder rebuilt in place, and SIGTERM while the workers hold everything. Nothing hangs,
nothing is served wrong, every request gets an answer."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from load_tests.faults import Observed, rebuild_in_place, steady_load
from load_tests.server import RunningService, running_service
from tests.conftest import Built
from tests.service.conftest import sample, wait_for_sample
from tests.support.waiting import wait_until

JOB_TIMEOUT, QUEUE_TIMEOUT = 1.0, 2.0
FAULT_ENV = {
    "TEXTCLF_CACHE_ENTRIES": "0",  # every request goes to a model worker
    "TEXTCLF_JOB_TIMEOUT_SECONDS": str(JOB_TIMEOUT),
    "TEXTCLF_QUEUE_TIMEOUT_SECONDS": str(QUEUE_TIMEOUT),
}


def ready_workers(svc: RunningService) -> float:
    return sample(svc, "textclf_workers_ready")


def served_again(seen: Observed) -> None:
    """Wait until the load gets 200s again and the readiness poll sees the pod ready, both after now."""
    answered, polled = len(seen.answers), len(seen.readiness)
    wait_until(
        lambda: (
            sum(a.status == 200 for a in seen.answers[answered:]) >= 8
            and any(status == 200 for _, status in seen.readiness[polled:])
        ),
        "answers and readiness after now",
    )


def test_killed_and_hung_workers_under_load_every_request_answered(
    small_model: Built, tmp_path: Path
) -> None:
    with running_service(small_model.artifact, tmp_path / "service.log", workers=2, env=FAULT_ENV) as svc:

        def replaced(victims: list[int]) -> Callable[[], bool]:
            def check() -> bool:
                pids = svc.model_worker_pids()
                return len(pids) == 2 and not set(victims) & set(pids) and ready_workers(svc) == 2

            return check

        faults = 0
        # The clients' timeout only keeps a hung request from hanging the test: it is 20 s past
        # anything the service's own deadlines allow.
        with steady_load(svc.url, client_timeout=JOB_TIMEOUT + QUEUE_TIMEOUT + 20) as seen:
            served_again(seen)
            # Each fault in turn: one worker killed, one hung, then both hung (the pod has no worker).
            for signum, count in ((signal.SIGKILL, 1), (signal.SIGSTOP, 1), (signal.SIGSTOP, 2)):
                victims = svc.model_worker_pids()[:count]
                for pid in victims:
                    os.kill(pid, signum)
                faults += count
                wait_until(replaced(victims), f"{victims} replaced after {signum.name}")
                served_again(seen)
        by_class = {
            c: sample(svc, "textclf_request_duration_seconds_count", route="/v1/classify", status_class=c)
            for c in ("2xx", "4xx", "5xx")
        }
        restarts = sample(svc, "textclf_model_worker_restarts_total")
        timeouts = sample(svc, "textclf_model_job_timeouts_total")

    answers = seen.answers
    statuses = [a.status for a in answers]
    # Every request answered (None: a client timeout or a broken connection), 200 or a 503 to retry.
    assert set(statuses) <= {200, 503} and 200 in statuses, set(statuses)
    assert all(a.retry_after for a in answers if a.status == 503)
    # Unready while both workers hung and their replacements loaded, ready again after.
    readiness = [status for _, status in seen.readiness]
    first_ready = readiness.index(200)
    assert 503 in readiness[first_ready:] and readiness[-1] == 200
    # What the clients got is what the service counted, answer for answer.
    assert by_class == {"2xx": statuses.count(200), "4xx": 0, "5xx": statuses.count(503)}
    assert restarts == faults
    assert timeouts == 3  # the three hung workers; the killed one was not a timeout


def test_a_model_folder_rebuilt_in_place_is_never_served_and_the_pod_goes_unready_then_not_live(
    small_model: Built, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(small_model.artifact, model)
    env = FAULT_ENV | {"TEXTCLF_UNREADY_LIVENESS_SECONDS": "3"}
    with running_service(model, tmp_path / "service.log", workers=1, env=env) as svc:
        version = httpx.post(svc.url + "/v1/classify", json={"text": "before"}, timeout=30).json()["model"]
        original, refused = rebuild_in_place(model / "manifest.json")
        os.kill(svc.model_worker_pids()[0], signal.SIGKILL)

        def status(path: str) -> int:
            return httpx.get(svc.url + path, timeout=10).status_code

        wait_until(lambda: status("/health/ready") == 503, "unready")
        answer = httpx.post(svc.url + "/v1/classify", json={"text": "while refused"}, timeout=30)
        assert answer.status_code == 503 and answer.headers["retry-after"]
        wait_until(lambda: "not this front's" in svc.log.read_text(), "the refusal logged")
        assert refused in svc.log.read_text()
        wait_until(lambda: status("/health/live") == 503, "liveness to fail")
        live = httpx.get(svc.url + "/health/live", timeout=10).json()
        assert live["error_type"] == "model_unavailable"
        # The original back (a rollback): the next replacement loads it and the pod recovers.
        (model / "manifest.json").write_text(original)
        wait_until(lambda: status("/health/ready") == 200, "ready again", seconds=90)
        assert status("/health/live") == 200
        again = httpx.post(svc.url + "/v1/classify", json={"text": "after"}, timeout=30)
        assert again.status_code == 200 and again.json()["model"] == version


@pytest.mark.parametrize("fronts", [1, 2])
def test_sigterm_answers_every_request_the_hung_workers_hold_within_the_graceful_budget(
    small_model: Built, tmp_path: Path, fronts: int
) -> None:
    budget = 2
    env = {
        "TEXTCLF_CACHE_ENTRIES": "0",
        "TEXTCLF_FRONTS": str(fronts),
        "TEXTCLF_GRACEFUL_SHUTDOWN_SECONDS": str(budget),
        # Long enough that only the shutdown clock can answer them.
        "TEXTCLF_JOB_TIMEOUT_SECONDS": "120",
        "TEXTCLF_QUEUE_TIMEOUT_SECONDS": "120",
    }
    with running_service(small_model.artifact, tmp_path / "service.log", workers=2, env=env) as svc:
        for pid in svc.model_worker_pids():
            os.kill(pid, signal.SIGSTOP)
        answers: list[tuple[float, int | None, str | None]] = []

        def ask(i: int) -> None:
            try:
                # Past the 2 s budget, short of the default one (25 s): only this budget answers in time.
                r = httpx.post(svc.url + "/v1/classify", json={"text": f"held {i}"}, timeout=15)
                answers.append((time.monotonic(), r.status_code, r.headers.get("x-error-type")))
            except httpx.TransportError:
                answers.append((time.monotonic(), None, None))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        # All sent and held: running on the hung workers, or queued behind them.
        wait_for_sample(svc, "textclf_in_flight_requests", 8)
        terminated = time.monotonic()
        code = svc.stop()
        for thread in threads:
            thread.join()

    assert code == 0
    # Each answered by the shutdown clock: 503 not_ready, after SIGTERM, where the job and queue
    # deadlines (120 s) would have answered something else, after the clients' 15 s timeout.
    assert [(s, e) for _, s, e in answers] == [(503, "not_ready")] * 8
    assert all(t > terminated for t, _, _ in answers)
