"""Integration: the real `python -m service` with 2 workers on a loopback port, over HTTP."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from load_tests.server import RunningService, free_port, running_service
from models import data
from service.artifact import graph_files
from service.manifest import load_artifact
from service.model.classifier import Classifier
from tests.conftest import Built
from tests.service.conftest import classify, misbuilt_copy, sample, wait_for_sample
from tests.support.processes import cpu_seconds
from tests.support.waiting import wait_until


def without_cached(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "cached"}


def test_http_predictions_equal_in_process_predictions(service: RunningService, small_model: Built) -> None:
    served = httpx.get(service.url + "/v1/model", timeout=10).json()["graph"]["choice"]["served"]
    classifier = Classifier.from_artifact(load_artifact(small_model.artifact), graph=served)
    for example in data.read_split(small_model.work / "data", "test")[:30]:
        body = classify(service, example.text).json()
        assert "labels" not in body  # a single-label model answers as it always did
        expected, _ = classifier.predict(example.text.strip())
        assert body["label"] == expected.label
        assert list(body["scores"].values()) == pytest.approx(expected.scores, abs=1e-6)
        assert (body["tokens"], body["truncated"]) == (expected.tokens, expected.truncated)
        assert body["model"] == {
            "name": small_model.manifest["name"],
            "version": small_model.manifest["version"],
        }


def test_responses_do_not_name_the_server(service: RunningService) -> None:
    assert "server" not in classify(service, "what runs here?").headers
    assert "server" not in httpx.get(service.url + "/health/live", timeout=10).headers


def test_a_text_sent_three_times_on_fresh_connections_is_computed_once(service: RunningService) -> None:
    # One cache per front, not per model worker: the repeats hit wherever their connection lands.
    text = f"computed once {uuid.uuid4()}"
    misses = sample(service, "textclf_cache_lookups_total", result="miss")
    answers = [classify(service, text).json() for _ in range(3)]  # httpx.post: a new connection each
    assert [a["cached"] for a in answers] == [False, True, True]
    assert sample(service, "textclf_cache_lookups_total", result="miss") == misses + 1


def test_cached_answer_is_identical_except_the_flag(service: RunningService) -> None:
    text = f"cache me {uuid.uuid4()}"
    first = classify(service, text)
    assert first.json()["cached"] is False and first.headers["x-cache"] == "miss"
    # With several fronts each has its own cache: repeat until the same one answers again.
    for _ in range(50):
        again = classify(service, text)
        if again.json()["cached"]:
            break
    assert again.json()["cached"] is True and again.headers["x-cache"] == "hit"
    assert without_cached(again.json()) == without_cached(first.json())


def test_normalized_text_shares_the_cache_entry_and_the_answer(service: RunningService) -> None:
    text = f"padded {uuid.uuid4()}"
    plain = classify(service, text).json()
    padded = [classify(service, f"  {text}\n").json() for _ in range(20)]
    assert all(without_cached(p) == without_cached(plain) for p in padded)
    assert any(p["cached"] for p in padded)


def test_batch_equals_single_requests_in_order(service: RunningService) -> None:
    texts = ["I love it", "worst day ever", f"batch {uuid.uuid4()}", "I love it"]
    response = httpx.post(service.url + "/v1/classify/batch", json={"texts": texts}, timeout=30)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 4
    for text, result in zip(texts, results, strict=True):
        assert without_cached(result) == without_cached(classify(service, text).json())


def test_truncation_is_reported(service: RunningService, small_model: Built) -> None:
    body = classify(service, "words " * 400).json()
    assert body["truncated"] is True and body["tokens"] == small_model.manifest["max_sequence_length"]


def test_both_workers_serve(small_model: Built, tmp_path: Path) -> None:
    # Texts bounded by count, not by the wait the workers' recent times predict: 8 clients on 2
    # shared cores slow the (niced) workers enough for that bound to shed on a slow machine.
    env = {"TEXTCLF_ADMISSION_WAIT_SECONDS": "0"}
    with running_service(small_model.artifact, tmp_path / "service.log", env=env) as service:
        pids = service.model_worker_pids()
        assert len(pids) == 2
        before = {pid: cpu_seconds(pid) for pid in pids}
        texts = [f"spread the load {uuid.uuid4()} over both workers" for _ in range(300)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda t: classify(service, t), texts))
        assert {r.status_code for r in answers} == {200}, [r.text for r in answers if r.status_code != 200][
            :3
        ]
        used = {pid: cpu_seconds(pid) - before[pid] for pid in pids}
    assert all(u > 0 for u in used.values()), used  # an idle worker blocks in recv: no CPU at all


def test_model_route_and_openapi(service: RunningService, small_model: Built) -> None:
    model = httpx.get(service.url + "/v1/model", timeout=10).json()
    assert (model["name"], model["version"]) == (
        small_model.manifest["name"],
        small_model.manifest["version"],
    )
    assert model["labels"] == small_model.manifest["labels"]
    # The first worker timed the model's two graphs at start-up; both serve the one it chose.
    graph = model["graph"]
    assert graph["available"] == ["fused", "unfused"]
    choice = graph["choice"]
    assert choice["rule"] == "timed" and graph["serving"] == {choice["served"]: 2}  # one graph, both workers
    assert set(choice["p50_ms"]) == {"fused", "unfused"} and set(choice["p50_ms"]["fused"]) == {"16", "64"}
    for name in ("fused", "unfused"):
        assert sample(service, "textclf_model_graph_workers", graph=name) == graph["serving"].get(name, 0)
    spec = httpx.get(service.url + "/openapi.json", timeout=10).json()
    assert {"/v1/classify", "/v1/classify/batch", "/v1/model", "/health/live", "/health/ready"} <= set(
        spec["paths"]
    )
    # The classify routes validate their own bodies; the schema must still document them.
    for path, field in (("/v1/classify", "text"), ("/v1/classify/batch", "texts")):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["required"] == [field]
    assert httpx.get(service.url + "/docs", timeout=10).status_code == 200
    assert httpx.get(service.url + "/health/live", timeout=10).json() == {"status": "alive"}


def test_answers_are_counted_by_model_and_label_beside_the_validation_splits_mix(
    service: RunningService, small_model: Built
) -> None:
    name, mix = small_model.manifest["name"], small_model.manifest["label_mix"]
    assert set(mix) == set(small_model.manifest["labels"]) and sum(mix.values()) == pytest.approx(1)
    for label, share in mix.items():
        assert sample(service, "textclf_expected_label_share", model=name, label=label) == share

    def counts() -> dict[str, float]:
        return {
            label: sample(service, "textclf_predictions_total", model=name, label=label, cached="false")
            for label in mix
        }

    before = counts()
    answered = [classify(service, f"counted by its label {uuid.uuid4()}").json()["label"] for _ in range(3)]
    expected = {label: before[label] + answered.count(label) for label in mix}
    wait_until(lambda: counts() == expected, f"the answers counted by label: {expected}")


def test_model_workers_share_the_pages_of_the_weights_file(
    service: RunningService, small_model: Built
) -> None:
    # ONNX Runtime maps the served graph's weights file into each worker instead of reading a private
    # copy of it: the pages both workers read (both warmed up on the same texts) are shared.
    served = httpx.get(service.url + "/v1/model", timeout=10).json()["graph"]["choice"]["served"]
    weights = str((small_model.artifact / graph_files(served)[1]).resolve())
    for pid in service.model_worker_pids():
        shared = 0
        mapping = None
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            fields = line.split()
            if fields and "-" in fields[0] and ":" not in fields[0]:  # a mapping's first line
                mapping = fields[5] if len(fields) > 5 else None
            elif mapping == weights and fields[0] in ("Shared_Clean:", "Shared_Dirty:"):
                shared += int(fields[1])
        assert shared > 0, f"worker {pid} shares no page of {weights}"


def test_front_and_model_workers_freeze_their_start_up_heaps(service: RunningService) -> None:
    # Kept out of every later full collection: one front and 2 model workers say how many.
    frozen = [int(n) for n in re.findall(r"(\d+) start-up objects frozen", service.log.read_text())]
    assert len(frozen) == 3
    assert min(frozen) > 1000


def test_sigterm_drains_in_flight_requests_and_exits_zero(small_model: Built, tmp_path: Path) -> None:
    texts = [e.text for e in data.read_split(small_model.work / "data", "test")]
    # Batches queue behind each other: neither the queue deadline nor the bound on texts waiting
    # for the model (one 64-text batch fills it for 2 workers) is under test here.
    env = {"TEXTCLF_QUEUE_TIMEOUT_SECONDS": "300", "TEXTCLF_MAX_IN_FLIGHT": "128"}
    with running_service(small_model.artifact, tmp_path / "service.log", env=env) as svc:
        workers = svc.model_worker_pids()

        def batch(i: int) -> httpx.Response:
            chunk = [f"{t} #{i}" for t in texts[i * 64 : (i + 1) * 64]]  # uncached, real work
            return httpx.post(svc.url + "/v1/classify/batch", json={"texts": chunk}, timeout=120)

        stop = threading.Event()
        statuses: list[int] = []

        def background_load() -> None:
            # Requests racing the shutdown may be refused; none may get an error status.
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    try:
                        statuses.append(classify_with(client, svc.url, f"load {uuid.uuid4()}"))
                    except httpx.TransportError:
                        return  # refused: the service is going away, and takes no more

        loader = threading.Thread(target=background_load)
        for pid in workers:  # stopped model workers: nothing in flight can finish before SIGTERM
            os.kill(pid, signal.SIGSTOP)
        with ThreadPoolExecutor(3) as pool:
            in_flight = [pool.submit(batch, i) for i in range(3)]
            wait_for_sample(svc, "textclf_in_flight_requests", 3)
            loader.start()
            wait_for_sample(svc, "textclf_in_flight_requests", 4)  # and the loader's first request
            svc.process.send_signal(signal.SIGTERM)
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
            exit_code = svc.process.wait(60)
            results = [f.result() for f in in_flight]
        stop.set()
        loader.join()
    assert exit_code == 0
    assert [r.status_code for r in results] == [200, 200, 200]
    assert all(len(r.json()["results"]) == 64 for r in results)
    assert statuses and set(statuses) == {200}


def classify_with(client: httpx.Client, url: str, text: str) -> int:
    return client.post(url + "/v1/classify", json={"text": text}).status_code


def start_up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m service` with only these variables, to its exit (a start-up meant to fail)."""
    return subprocess.run(
        [sys.executable, "-m", "service"],
        env=env | {"PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_artifact_fails_start_up_with_a_clear_message(tmp_path: Path) -> None:
    result = start_up({"TEXTCLF_MODEL_DIR": str(tmp_path / "none")})
    assert result.returncode == 1
    assert "no model artifact" in result.stderr and "make model" in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_artifact_fails_start_up_before_listening(small_model: Built, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    shutil.copytree(small_model.artifact, corrupt)
    model = corrupt / "model.onnx"
    model.write_bytes(model.read_bytes()[:1000])  # a truncated copy, as after a failed download
    result = start_up({"TEXTCLF_MODEL_DIR": str(corrupt), "TEXTCLF_PORT": str(free_port())})
    assert result.returncode == 1
    assert "model.onnx does not match the SHA-256" in result.stderr
    assert "Traceback" not in result.stderr and "Uvicorn running" not in result.stderr


def test_a_pinned_graph_is_served_by_a_colocated_model_too(small_model: Built, tmp_path: Path) -> None:
    env = {"TEXTCLF_SERVING": "colocated", "TEXTCLF_MODEL_GRAPH": "unfused"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        graph = httpx.get(svc.url + "/v1/model", timeout=10).json()["graph"]
        assert graph["serving"] == {"unfused": 1}
        assert (graph["choice"]["served"], graph["choice"]["rule"]) == ("unfused", "pinned")
        assert classify(svc, "served by the unfused graph").status_code == 200
        assert sample(svc, "textclf_model_graph_workers", graph="unfused") == 1
        assert sample(svc, "textclf_model_graph_workers", graph="fused") == 0


def test_a_graph_the_model_lacks_fails_start_up_naming_those_it_has(small_model: Built) -> None:
    result = start_up({"TEXTCLF_MODEL_DIR": str(small_model.artifact), "TEXTCLF_MODEL_GRAPH": "matmul"})
    assert result.returncode == 1
    assert "TEXTCLF_MODEL_GRAPH=matmul" in result.stderr and "fused, unfused; or auto" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("serving", "http_processes"), [("pool", 1), ("pool", 2), ("colocated", 2)])
def test_a_model_that_fails_in_its_worker_fails_start_up_non_zero(
    small_model: Built, tmp_path: Path, serving: str, http_processes: int
) -> None:
    # Passes the launcher's checks, then fails every warm-up: inside uvicorn's worker processes.
    artifact = misbuilt_copy(small_model, tmp_path / "misbuilt")
    env = {
        "TEXTCLF_MODEL_DIR": str(artifact),
        "TEXTCLF_PORT": str(free_port()),
        "TEXTCLF_SERVING": serving,
        "TEXTCLF_WORKERS": "2",
        "TEXTCLF_FRONTS": str(http_processes),
        "TEXTCLF_WARMUP_RUNS": "1",
        "PATH": "",
    }
    result = subprocess.run(
        [sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Application startup failed" in result.stderr


def test_bad_setting_fails_start_up_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service"],
        env={"TEXTCLF_WORKERS": "-3", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "TEXTCLF_WORKERS='-3'" in result.stderr


def test_help_lists_the_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "TEXTCLF_CACHE_ENTRIES" in result.stdout and "TEXTCLF_WORKERS" in result.stdout


def test_the_launcher_does_not_import_prometheus_client_before_it_sets_the_metrics_folder() -> None:
    # prometheus_client picks multiprocess mode at import: imported earlier, a one-process service
    # would export empty metrics.
    check = "import sys, service.front.server.launcher; sys.exit('prometheus_client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check]).returncode == 0


def test_the_docs_pages_load_everything_from_the_service_itself(service: RunningService) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(service.url + page, timeout=10)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        # Nothing from a CDN (blank pages in an air-gapped cluster): every URL is the service's own.
        assert re.findall(r"https?://", html.text) == []
        assets = re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", html.text)
        assert assets, html.text
        for asset in assets:
            response = httpx.get(service.url + asset, timeout=10)
            assert response.status_code == 200, asset
            assert len(response.content) > 100_000  # the real bundle, not an error page
