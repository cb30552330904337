"""A real Prometheus scrapes the real service (2 workers) and evaluates the project's rules."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from load_tests.server import RunningService, free_port, running_service
from tests.conftest import Built

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False, cwd=RULES
    )


def test_rule_files_are_valid() -> None:
    result = promtool("check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def service(small_model: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    log = tmp_path_factory.mktemp("metrics-service") / "service.log"
    # Two HTTP fronts of one model worker each: the scrape must sum over processes.
    with running_service(small_model.artifact, log, workers=2, env={"TEXTCLF_FRONTS": "2"}) as svc:
        yield svc


@pytest.fixture(scope="module")
def prometheus(service: RunningService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("prometheus")
    shutil.copy(RULES / "rules.yml", folder / "rules.yml")
    target = service.url.removeprefix("http://")
    (folder / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        f"scrape_configs: [{{job_name: textclf, static_configs: [{{targets: ['{target}']}}]}}]\n"
    )
    port = free_port()
    with (folder / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(url + "/-/ready", timeout=2).status_code == 200, "prometheus ready")
        yield url
    finally:
        process.terminate()
        process.wait(30)


def wait_for(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def query(prometheus: str, promql: str) -> float | None:
    result = httpx.get(prometheus + "/api/v1/query", params={"query": promql}, timeout=10).json()["data"][
        "result"
    ]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_sees_every_request_across_workers(service: RunningService, prometheus: str) -> None:
    total = 'sum(textclf_request_duration_seconds_count{route="/v1/classify",status_class="2xx"})'
    # The service creates its series at zero; rate() needs that sample before the traffic.
    wait_for(lambda: query(prometheus, total) == 0, "the zero-valued series scraped")
    texts = [f"prometheus test {uuid.uuid4()} {i}" for i in range(90)]
    cached_flags: list[bool] = []

    def session(chunk: list[str]) -> list[bool]:
        # One keep-alive connection stays on one worker, so each repeat is a deterministic hit.
        with httpx.Client(base_url=service.url, timeout=30) as client:
            return [client.post("/v1/classify", json={"text": t}).json()["cached"] for t in chunk + chunk]

    def fresh(text: str) -> bool:
        # A new connection each: these spread over both workers.
        response = httpx.post(service.url + "/v1/classify", json={"text": text}, timeout=30)
        return bool(response.json()["cached"])

    with ThreadPoolExecutor(4) as pool:
        for flags in pool.map(session, [texts[0:20], texts[20:40]]):
            cached_flags += flags
        cached_flags += list(pool.map(fresh, texts[40:90]))
    sent, repeats = 80 + 50, 40
    assert cached_flags.count(True) == repeats

    # Both fronts must have served, or this would not test aggregation: 2 x (front + its worker).
    metrics = httpx.get(service.url + "/metrics", timeout=10).text
    assert metrics.count("textclf_process_resident_memory_bytes{") == 4

    wait_for(lambda: query(prometheus, total) == sent, f"{total} == {sent}")
    assert query(prometheus, 'sum(textclf_cache_lookups_total{result="hit"})') == repeats
    assert query(prometheus, 'sum(textclf_cache_lookups_total{result="miss"})') == sent - repeats
    assert query(prometheus, "sum(textclf_workers_ready)") == 2
    assert (query(prometheus, "sum(textclf_model_worker_busy_seconds_total)") or 0) > 0
    assert query(prometheus, "sum(textclf_stage_duration_seconds_count{stage='inference'})") == sent - repeats

    p99 = 'job_route:textclf_request_duration_seconds:p99_rate1m{route="/v1/classify"}'
    wait_for(lambda: (v := query(prometheus, p99)) is not None and not math.isnan(v), f"{p99} evaluated")
    value = query(prometheus, p99)
    assert value is not None and 0.0001 < value < 1.0
    ratio = query(prometheus, "job:textclf_cache_hit_ratio:rate5m")
    assert ratio is not None and 0 < ratio < 1


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def test_worker_utilization_rules_match_the_workers_cpu_time(
    service: RunningService, prometheus: str
) -> None:
    """Under a steady load, the HPA's signal agrees with the CPU time the model workers burn."""
    rules = (
        "job:textclf_model_worker_utilization:rate1m",
        "instance:textclf_model_worker_utilization:rate1m",
    )
    window = 60.0  # the rule's range: it must see a whole window of the steady load
    workers = service.model_worker_pids()
    stop = threading.Event()

    def steady_load() -> None:
        # One connection, every text new: the workers take turns at a steady share of the time.
        with httpx.Client(base_url=service.url, timeout=30) as client:
            while not stop.is_set():
                client.post("/v1/classify", json={"text": f"utilization {uuid.uuid4()} " * 8})

    load = threading.Thread(target=steady_load)
    load.start()
    try:
        time.sleep(3)  # past the first scrape of the load
        before, started = cpu_seconds(workers), time.monotonic()
        time.sleep(window + 2)
        cpu = (cpu_seconds(workers) - before) / (time.monotonic() - started) / len(workers)
        reported = {name: query(prometheus, name) for name in rules}
    finally:
        stop.set()
        load.join(30)
    assert cpu > 0.05, "the load did not keep the workers busy enough to compare"
    for name, value in reported.items():
        assert value is not None and abs(value - cpu) <= 0.1 * cpu, (name, value, cpu)
