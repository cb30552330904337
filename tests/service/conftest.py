"""The real service (`python -m service`, 2 workers) on a loopback port, shared by a test module."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from load_tests.server import RunningService, running_service
from tests.conftest import Built

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def service(small_model: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with running_service(small_model.artifact, tmp_path_factory.mktemp("service") / "service.log") as svc:
        yield svc


def classify(svc: RunningService, text: str) -> httpx.Response:
    return httpx.post(svc.url + "/v1/classify", json={"text": text}, timeout=30)
