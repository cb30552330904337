"""The load generator against the real service (2 workers, the small model) on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from load_tests.client import Target
from load_tests.loadgen import LoadConfig, run
from load_tests.server import RunningService, running_service
from models.data import read_split
from tests.conftest import Built


@pytest.fixture(scope="module")
def service(small_model: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with running_service(small_model.artifact, tmp_path_factory.mktemp("load") / "service.log") as svc:
        yield svc


@pytest.fixture(scope="module")
def texts(small_model: Built) -> list[str]:
    return [e.text for e in read_split(small_model.work / "data", "test")]


def test_open_model_sends_on_schedule_and_measures_hits_and_stages(
    service: RunningService, texts: list[str]
) -> None:
    config = LoadConfig(
        url=service.url + "/v1/classify", mode="open", rate=100, requests=200, hit_ratio=0.5, hot_size=8
    )
    result = run(config, texts)
    assert result["passed"], result
    assert result["sent"] == result["ok"] == 200
    # On schedule, not as fast as the service could answer: no request sent before its time (the
    # last one is due 199/100 s in), whatever the machine's speed.
    assert result["duration_s"] >= (config.requests - 1) / config.rate
    # Warm-up put the 8 hot texts in both workers' caches; the other texts are new.
    assert 0.45 <= result["hit_ratio"] <= 0.5
    assert result["server_ms"]["inference"]["p50"] > 0
    assert result["latency_ms"]["p50"] <= result["latency_ms"]["p99"] <= result["latency_ms"]["max"]


def test_closed_model_runs_every_request_back_to_back(service: RunningService, texts: list[str]) -> None:
    config = LoadConfig(url=service.url + "/v1/classify", mode="closed", concurrency=4, requests=150)
    result = run(config, texts)
    assert result["passed"], result
    assert result["sent"] == result["ok"] == 150 and result["schedule_lag_ms"] is None


def test_cli_fails_the_run_on_any_non_2xx(
    service: RunningService, small_model: Built, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    # The batch route wants "texts": every request gets a 422.
    result = subprocess.run(
        [sys.executable, "-m", "load_tests.loadgen", "--url", service.url + "/v1/classify/batch"]
        + ["--mode", "closed", "--requests", "20", "--texts", str(small_model.work / "data" / "test.jsonl")]
        + ["--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert json.loads(out.read_text())["statuses"] == {"422": 20}


def test_only_loopback_unless_allowed() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Target.parse("http://example.com/v1/classify")
    assert Target.parse("http://example.com/v1/classify", allow_remote=True).host == "example.com"
    assert Target.parse("http://localhost:8000/v1/classify").port == 8000


def test_a_secured_service_is_loaded_with_a_token_that_no_report_shows(
    small_model: Built, tmp_path: Path
) -> None:
    token = "load-test-token-5c1f"
    (tmp_path / "token").write_text(token + "\n")
    data = str(small_model.work / "data" / "test.jsonl")
    settings = {"TEXTCLF_API_TOKENS": token}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=settings) as svc:

        def loadgen(*extra: str) -> tuple[subprocess.CompletedProcess[str], str]:
            out = tmp_path / "run.json"
            result = subprocess.run(
                [sys.executable, "-m", "load_tests.loadgen", "--url", svc.url + "/v1/classify"]
                + ["--mode", "closed", "--requests", "30", "--texts", data, "--json", str(out), *extra],
                capture_output=True,
                text=True,
                timeout=120,
            )
            return result, out.read_text() if out.exists() else ""

        refused, _ = loadgen()
        assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
        for flags in (["--token-file", str(tmp_path / "token")], ["--token", token]):
            result, report = loadgen(*flags)
            assert result.returncode == 0, result.stderr
            assert json.loads(report)["statuses"] == {"200": 30}
            assert token not in result.stdout + result.stderr + report


def test_burst_secures_the_service_it_starts_with_the_token_and_never_prints_it(
    small_model: Built, tmp_path: Path
) -> None:
    token = "burst-token-77aa"
    (tmp_path / "token").write_text(token + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "load_tests.burst", "--model-dir", str(small_model.artifact)]
        + ["--requests", "20", "--workers", "1", "--token-file", str(tmp_path / "token")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["by_status"]["200"]["count"] == 20 and report["token"] is True
    assert token not in result.stdout + result.stderr
