"""Which paths are probes and which are API work, in memory: the probe routes exactly, never a
path that only ends like one."""

from __future__ import annotations

import pytest

from service.front.api_paths import is_api, is_probe

PROBES = [
    "/health/live",
    "/health/ready",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/m/ready",
    "/v2/models/m/versions/1/ready",
    # Route templates too: the metrics read the matched route's path.
    "/v2/models/{model_name}/ready",
    "/v2/models/{model_name}/versions/{model_version}/ready",
]
LOOK_ALIKES = [
    "/v2/models/ready",  # the metadata of a model named "ready"
    "/v2/models/m/versions/ready",  # of its version "ready"
    "/v2/models/a/b/ready",
    "/v2/models//ready",
    "/v2/models/m/versions//ready",
    "/v2/models/m/ready/",
    "/v2/health/other",
    "/v2/health/ready/",
    "/v2/models/m/infer",
]


@pytest.mark.parametrize("path", PROBES)
def test_a_probe_route_is_a_probe_and_no_api_work(path: str) -> None:
    assert is_probe(path) and not is_api(path)


@pytest.mark.parametrize("path", LOOK_ALIKES)
def test_a_path_that_only_looks_like_a_probe_is_api_work(path: str) -> None:
    assert is_api(path) and not is_probe(path)


@pytest.mark.parametrize("path", ["/health/other", "/healthz", "/metrics", "/docs"])
def test_other_paths_outside_the_api_are_neither(path: str) -> None:
    assert not is_probe(path) and not is_api(path)
