"""The Kubernetes manifests: rendered by kubectl kustomize, schema-valid offline, and consistent
with the service they run (routes, port, settings, drain time, metrics, image user)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.config import Settings
from service.front.app import create_app
from service.front.telemetry.metrics import Metrics

DEPLOY = Path(__file__).parents[2] / "deploy"
KUSTOMIZATIONS = ["k8s/base", "k8s/overlays/example"]
# The oldest Kubernetes release still commonly run, and the newest the validator knows.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
OPERATOR_GROUP = "monitoring.coreos.com"

Obj = dict[str, Any]


def render(kustomization: str) -> list[Obj]:
    """The objects `kubectl kustomize` renders, as `kubectl apply -k` would send them."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def objects(request: pytest.FixtureRequest) -> list[Obj]:
    return render(request.param)


def one(objects: list[Obj], kind: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(objects: list[Obj]) -> Obj:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: Obj = containers[0]
    return result


def env(objects: list[Obj]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(objects)["env"]}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def test_every_kustomization_renders_the_whole_service(objects: list[Obj]) -> None:
    kinds = {o["kind"] for o in objects}
    expected = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert expected | {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_core_object_validates_against_the_kubernetes_schema(objects: list[Obj], version: str) -> None:
    checked = 0
    for obj in objects:
        if obj["apiVersion"].startswith(OPERATOR_GROUP + "/"):
            continue  # CRDs: the validator has no schema for them; their own tests are below
        # strict: an unknown or misspelt field fails instead of being silently dropped by the API.
        kubernetes_validate.validate(obj, version, strict=True)
        checked += 1
    assert checked >= 5


def test_probes_point_at_real_routes_on_the_service_port(
    objects: list[Obj], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = container(objects)
    for name, value in env(objects).items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # the pod's environment is a valid configuration
    routes = set(create_app(settings).api.openapi()["paths"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": settings.port}
    assert settings.host == "0.0.0.0"
    for probe, path in [
        ("startupProbe", "/health/ready"),
        ("readinessProbe", "/health/ready"),
        # Live, not ready: a busy or draining pod must not be restarted.
        ("livenessProbe", "/health/live"),
    ]:
        assert c[probe]["httpGet"] == {"path": path, "port": "http"}
        assert path in routes
    annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in routes
    assert int(annotations["prometheus.io/port"]) == settings.port


def test_workers_come_from_whole_core_cpu_limits_equal_to_requests(objects: list[Obj]) -> None:
    c = container(objects)
    requests, limits = c["resources"]["requests"], c["resources"]["limits"]
    assert requests == limits  # Guaranteed QoS; no CFS throttling of a worker mid-inference
    assert cores(limits["cpu"]).is_integer() and cores(limits["cpu"]) >= 1
    # The service derives workers from the cgroup CPU quota; a fixed count could disagree.
    assert "TEXTCLF_WORKERS" not in env(objects)
    # The measured sizing rule (docs/deploy.md): 128 MiB + 320 MiB per worker.
    assert mebibytes(limits["memory"]) >= 128 + 320 * cores(limits["cpu"])


def test_termination_grace_covers_pre_stop_and_the_drain(objects: list[Obj]) -> None:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    pre_stop = container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(env(objects)["TEXTCLF_GRACEFUL_SHUTDOWN_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] >= float(pre_stop[1]) + drain + 5
    strategy = one(objects, "Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_pods_run_locked_down_as_the_image_user(objects: list[Obj]) -> None:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    sc = container(objects)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    user = re.search(r"^USER (\d+):(\d+)$", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert user is not None
    assert pod["securityContext"]["runAsUser"] == int(user.group(1)) != 0
    assert pod["automountServiceAccountToken"] is False
    # The only writable path holds the multiprocess metrics files.
    mounts = {m["mountPath"]: m["name"] for m in container(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert env(objects)["TEXTCLF_METRICS_DIR"].startswith("/tmp/")


def test_pods_spread_over_zones_and_nodes(objects: list[Obj]) -> None:
    pod = one(objects, "Deployment")["spec"]["template"]
    constraints = pod["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for c in constraints:
        assert selects(c["labelSelector"]["matchLabels"], pod["metadata"]["labels"])


def test_service_pdb_and_monitor_select_the_pods(objects: list[Obj]) -> None:
    deployment = one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    service = one(objects, "Service")
    assert selects(service["spec"]["selector"], pod_labels)
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    pdb = one(objects, "PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pdb["spec"]["maxUnavailable"] < one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
    monitor = one(objects, "ServiceMonitor")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert monitor["metadata"].get("namespace") == service["metadata"].get("namespace")
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_hpa_scales_the_deployment_on_cpu_and_model_worker_utilization(objects: list[Obj]) -> None:
    hpa = one(objects, "HorizontalPodAutoscaler")
    deployment = one(objects, "Deployment")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    by_type = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    pods = by_type["Pods"]["pods"]
    # The adapter serves the metric under the HPA's name, from a series a recording rule writes...
    adapter = yaml.safe_load((DEPLOY / "k8s/prometheus-adapter-values.yaml").read_text())
    [rule] = adapter["rules"]["custom"]
    assert rule["name"]["as"] == pods["metric"]["name"]
    series = rule["seriesQuery"].split("{")[0]
    assert re.fullmatch(rule["name"]["matches"], series)
    rules = yaml.safe_load((DEPLOY / "prometheus/rules.yml").read_text())["groups"]
    [recorded] = [r for g in rules for r in g["rules"] if r.get("record") == series]
    # ...from counters and gauges the service exports.
    exported = {family.name for family in Metrics(None).registry.collect()}
    used = set(re.findall(r"textclf_\w+", recorded["expr"]))
    assert used and {re.sub(r"_total$", "", u) for u in used} <= exported
    # A share of the workers' time, per pod: a fraction, whatever the pod's size.
    target = pods["target"]["averageValue"]
    assert 0 < (float(target[:-1]) / 1000 if target.endswith("m") else float(target)) < 1


def test_operator_objects_carry_the_repositorys_rules_and_dashboard(objects: list[Obj]) -> None:
    rule = one(objects, "PrometheusRule")
    assert rule["apiVersion"] == f"{OPERATOR_GROUP}/v1"
    rules = yaml.safe_load((DEPLOY / "prometheus/rules.yml").read_text())
    assert rule["spec"] == rules, "regenerate: make deploy/prometheus/prometheusrule.yaml"
    [dashboard] = [
        o for o in objects if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"]["labels"]
    ]
    shipped = json.loads((DEPLOY / "grafana/textclf-dashboard.json").read_text())
    assert json.loads(dashboard["data"]["textclf-dashboard.json"]) == shipped


def test_the_example_overlay_scales_memory_and_target_with_its_cores() -> None:
    base, example = render("k8s/base"), render("k8s/overlays/example")
    assert cores(container(example)["resources"]["limits"]["cpu"]) > cores(
        container(base)["resources"]["limits"]["cpu"]
    )
    assert {o["metadata"].get("namespace") for o in example if o["kind"] != "Namespace"} == {"textclf"}
    image = container(example)["image"]
    assert image.startswith("registry.example.com/") and not image.endswith(":latest")


def test_the_base_image_is_the_release_tag_never_latest() -> None:
    version = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["version"]
    base = container(render("k8s/base"))
    assert base["image"] == f"textclf-service:{version}"
    assert base["imagePullPolicy"] == "IfNotPresent"  # safe only because the tag never moves
