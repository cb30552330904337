"""A real Prometheus scrapes the real service (2 workers) and evaluates the project's rules."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from load_tests.server import RunningService, free_port, running_service
from service.front.edge.route_table import ROUTES
from tests.conftest import Built
from tests.service.conftest import sample
from tests.support.processes import cpu_seconds
from tests.support.waiting import wait_until

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


def test_every_classify_route_is_in_the_api_rules_and_has_an_slo() -> None:
    # A route added to the table but not to the rules' selector would vanish from the p99 alert.
    rules = (RULES / "rules.yml").read_text()
    selectors = set(re.findall(r'route=~"([^"]+)"', rules))
    slos = set(re.findall(r'label_replace\(vector\([0-9.]+\), "route", "([^"]+)"', rules))
    for route in (r for r in ROUTES if r.hot):
        assert all(re.fullmatch(selector, route.path) for selector in selectors), route.path
        assert route.path in slos, route.path


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


def wait_for(check: Callable[[], object], what: str) -> None:
    """Wait until `check` holds; Prometheus or the service not answering yet counts as not yet."""
    wait_until(check, what, ignoring=(httpx.HTTPError,))


def query(prometheus: str, promql: str, at: float | None = None) -> float | None:
    """The value of an instant query (at the Unix time `at`, or now), None if it has no series."""
    params = {"query": promql} | ({"time": repr(at)} if at is not None else {})
    result = httpx.get(prometheus + "/api/v1/query", params=params, timeout=10).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def quantile_bucket(metrics: str, route: str, q: float) -> tuple[float, float]:
    """The bounds (lower, upper] of the bucket that holds a route's q-quantile request duration, by
    the service's own histogram (summed over status classes, as the rule sums them)."""
    cumulative: dict[float, float] = {}
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            if s.name == "textclf_request_duration_seconds_bucket" and s.labels["route"] == route:
                le = float(s.labels["le"])
                cumulative[le] = cumulative.get(le, 0.0) + s.value
    bounds = sorted(cumulative)
    rank = q * cumulative[math.inf]
    upper = next(le for le in bounds if cumulative[le] >= rank)
    return max((le for le in bounds if le < upper), default=0.0), upper


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

    wait_for(lambda: query(prometheus, total) == sent, f"{total} == {sent}")
    # Both fronts must have served, or this would not test aggregation: 2 x (front + its worker).
    metrics = httpx.get(service.url + "/metrics", timeout=10).text
    assert metrics.count("textclf_process_resident_memory_bytes{") == 4
    assert query(prometheus, 'sum(textclf_cache_lookups_total{result="hit"})') == repeats
    assert query(prometheus, 'sum(textclf_cache_lookups_total{result="miss"})') == sent - repeats
    assert query(prometheus, "sum(textclf_workers_ready)") == 2
    assert (query(prometheus, "sum(textclf_model_worker_busy_seconds_total)") or 0) > 0
    assert query(prometheus, "sum(textclf_stage_duration_seconds_count{stage='inference'})") == sent - repeats

    # The recorded p99 (in seconds) lies in the bucket of the service's own histogram that holds the
    # 99th percentile of these requests; the rule may first have seen only part of them.
    lower, upper = quantile_bucket(metrics, "/v1/classify", 0.99)
    p99 = 'job_route:textclf_request_duration_seconds:p99_rate1m{route="/v1/classify"}'
    wait_for(lambda: lower <= (query(prometheus, p99) or math.nan) <= upper, f"{p99} in ({lower}, {upper}]")
    ratio = query(prometheus, "job:textclf_cache_hit_ratio:rate5m")
    assert ratio is not None and 0 < ratio < 1


def test_busy_seconds_hold_each_jobs_model_time_and_the_workers_cpu_within_their_requests(
    service: RunningService,
) -> None:
    """What the HPA's signal counts: each job's time in its worker, receive to reply, in seconds,
    summed over both fronts. One client sends one request at a time, so the jobs never overlap."""
    workers = service.model_worker_pids()
    inference_count = "textclf_stage_duration_seconds_count"
    busy = "textclf_model_worker_busy_seconds_total"
    jobs, model, round_trips = 200, 0.0, 0.0
    computed, busy_before = sample(service, inference_count, stage="inference"), sample(service, busy)
    cpu_before = cpu_seconds(*workers)
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for _ in range(jobs):  # every text new: each one a job
            sent = time.perf_counter()
            response = client.post("/v1/classify", json={"text": f"utilization {uuid.uuid4()} " * 8})
            round_trips += time.perf_counter() - sent
            assert response.headers["x-cache"] == "miss"
            model += (
                float(response.headers["x-tokenize-time"]) + float(response.headers["x-inference-time"])
            ) / 1e3
    cpu = cpu_seconds(*workers) - cpu_before
    # Each front publishes its counts on its own schedule: wait until both have published every job.
    wait_for(
        lambda: sample(service, inference_count, stage="inference") == computed + jobs, "every job counted"
    )
    counted = sample(service, busy) - busy_before
    # Each job's busy time holds its tokenizing and inference (the response's stage times, to the
    # µs) and lies within its request's round trip.
    assert model <= counted <= round_trips, (model, counted, round_trips)
    # An idle worker blocks in recv: the workers burned CPU only inside these round trips (to one
    # clock tick per process).
    assert 0 < cpu <= round_trips + len(workers) / os.sysconf("SC_CLK_TCK"), (cpu, round_trips)


def test_worker_utilization_rules_are_busy_seconds_per_second_per_ready_worker(
    service: RunningService, prometheus: str
) -> None:
    """The HPA's signal, by the project's rules, equals its definition over the scraped series at the
    same evaluation: the model workers' busy seconds per second, over the ready workers."""
    definition = "sum(rate(textclf_model_worker_busy_seconds_total[1m])) / sum(textclf_workers_ready > 0)"
    rules = (
        "job:textclf_model_worker_utilization:rate1m",
        "instance:textclf_model_worker_utilization:rate1m",
    )
    # A rate needs a sample from before the jobs: a series first scraped after them rises from nothing.
    scraped = "sum(textclf_model_worker_busy_seconds_total)"
    wait_for(lambda: query(prometheus, scraped) is not None, "a scrape of the busy seconds")
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for _ in range(100):  # jobs inside the rules' one-minute window
            assert client.post("/v1/classify", json={"text": f"rules {uuid.uuid4()}"}).status_code == 200

    def agrees(rule: str) -> bool:
        # The rule's latest sample, and the definition evaluated at that sample's own time. A scrape
        # stored just after the rule ran can make one evaluation differ: the next one agrees.
        at = query(prometheus, f"timestamp({rule})")
        if at is None:
            return False
        recorded, defined = query(prometheus, rule, at), query(prometheus, definition, at)
        return (
            recorded is not None
            and defined is not None
            and defined > 0
            and recorded == pytest.approx(defined)
        )

    for rule in rules:
        wait_for(partial(agrees, rule), f"{rule} == {definition}, above 0")
    assert query(prometheus, "sum(textclf_workers_ready)") == 2
