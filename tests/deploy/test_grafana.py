"""The dashboard imports (valid JSON, Prometheus datasource variable) and queries only real metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from load_tests.server import running_service
from tests.conftest import Built

DEPLOY = Path(__file__).parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "textclf-dashboard.json"
# Names from Prometheus itself, not from the service.
PROMETHEUS_BUILTINS = {"up"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def live_metric_names(small_model: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    log = tmp_path_factory.mktemp("grafana-service") / "service.log"
    with running_service(small_model.artifact, log, workers=1) as svc:
        httpx.post(svc.url + "/v1/classify", json={"text": "populate every metric"}, timeout=30)
        httpx.post(svc.url + "/v1/classify", json={"text": "populate every metric"}, timeout=30)
        httpx.post(svc.url + "/v1/classify", content=b"x", timeout=30)  # an error, for errors_total
        text = httpx.get(svc.url + "/metrics", timeout=10).text
    yield {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def metric_names(expr: str) -> set[str]:
    """Metric and recording-rule names in a PromQL expression (label values and functions left out)."""
    without_strings = re.sub(r'"[^"]*"', "", expr)
    tokens = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_strings))
    return {t for t in tokens if "textclf" in t} | (tokens & PROMETHEUS_BUILTINS)


def expressions(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield target["expr"]


def test_dashboard_is_importable_with_a_datasource_variable(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_dashboard_covers_what_on_call_watches(dashboard: dict[str, Any]) -> None:
    text = " ".join(expressions(dashboard))
    for needle in (
        "histogram_quantile(0.99",
        "textclf_cache_lookups_total",
        "textclf_stage_duration_seconds",
        "textclf_input_tokens",
        "textclf_in_flight_requests",
        "textclf_queue_depth",
        "textclf_model_worker_utilization",
        "textclf_errors_total",
        "textclf_workers_ready",
        "status_class",
    ):
        assert needle in text


def test_every_queried_metric_is_exported_by_the_service(
    dashboard: dict[str, Any], live_metric_names: set[str]
) -> None:
    recorded = {
        r["record"]
        for g in yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    for expr in expressions(dashboard):
        for name in metric_names(expr):
            assert name in live_metric_names | recorded | PROMETHEUS_BUILTINS, f"{name} in {expr}"


def test_every_rule_uses_metrics_the_service_exports(live_metric_names: set[str]) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for group in rules["groups"]:
        for rule in group["rules"]:
            for name in metric_names(rule["expr"]):
                assert name in live_metric_names | recorded, (
                    f"{name} in {rule.get('record') or rule['alert']}"
                )
