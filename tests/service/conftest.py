"""The real service (`python -m service`, 2 workers) on a loopback port, shared by a test module."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from load_tests.server import RunningService, running_service
from service.artifact import artifact_version
from tests.conftest import Built
from tests.support.waiting import wait_until

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def service(small_model: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with running_service(small_model.artifact, tmp_path_factory.mktemp("service") / "service.log") as svc:
        yield svc


def classify(svc: RunningService, text: str) -> httpx.Response:
    return httpx.post(svc.url + "/v1/classify", json={"text": text}, timeout=30)


def sample(svc: RunningService, name: str, token: str | None = None, **labels: str) -> float:
    """The sum of one metric's samples with these labels, from a scrape of /metrics."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    text = httpx.get(svc.url + "/metrics", headers=headers, timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def wait_for_sample(svc: RunningService, name: str, expected: float, **labels: str) -> None:
    """Scrape until the metric reaches `expected` (an event in the service, seen from outside)."""
    wait_until(lambda: sample(svc, name, **labels) == expected, f"{name}{labels} to reach {expected}")


SCHEMATHESIS_CONFIG = """\
# Every check, on every operation.
checks.enabled = true

# The Open Inference Protocol's routes, with the served model's name and version in their paths.
[[operations]]
include-path-regex = "^/v2/models/"
parameters = {{ model_name = "{name}", model_version = "{version}" }}

# Its infer body relates fields JSON Schema cannot relate (a tensor's shape and the length of its
# data): a body valid by the schema is most often a bad tensor, answered 400 `invalid_tensor`, so
# that check and the warning saying so are off there; every other check stays on.
[[operations]]
include-path-regex = "/infer$"
checks.positive_data_acceptance.enabled = false
warnings = false
"""


def schemathesis(url: str, workdir: Path, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` on the service's own schema, with `token` if given: every check
    (SCHEMATHESIS_CONFIG says which operations skip one), 100 examples per operation."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    model = httpx.get(url + "/v1/model", headers=headers, timeout=10).json()
    config = workdir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG.format(name=model["name"], version=model["version"]))
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        url + "/openapi.json",
        "--max-examples",
        "100",
        # Bounded and repeatable: the same requests on every run, so a failure reproduces.
        "--generation-deterministic",
        "--workers",
        "1",
        "--report-dir",
        str(workdir),
        *(["--header", f"Authorization: Bearer {token}"] if token else []),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=workdir)


def misbuilt_copy(built: Built, folder: Path) -> Path:
    """A copy of the artifact whose manifest lets texts past the model's 512 positions through.

    ONNX Runtime then fails on any text over 512 tokens, inside the model, for real: a fault
    nothing has to mock (its warm-up at max length fails too).
    """
    shutil.copytree(built.artifact, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["max_sequence_length"] = 2048
    # As a build with that mistake would write it: the version matches what it says.
    manifest["version"] = artifact_version(manifest["files"], manifest["labels"], 2048)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder
