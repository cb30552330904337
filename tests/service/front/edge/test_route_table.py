"""The route table, in memory: each path matched to its one route, probes exactly, never a path
that only ends like one, and path parameters bound segment by segment."""

from __future__ import annotations

import pytest

from service.front.edge.route_table import ROUTES, UNKNOWN_ROUTE, Access, RouteTable

TABLE = RouteTable()

PROBES = {
    "/health/live": {},
    "/health/ready": {},
    "/v2/health/live": {},
    "/v2/health/ready": {},
    "/v2/models/m/ready": {"model_name": "m"},
    "/v2/models/m/versions/1/ready": {"model_name": "m", "model_version": "1"},
}
LOOK_ALIKES = [
    "/v2/models/a/b/ready",
    "/v2/models//ready",
    "/v2/models/m/versions//ready",
    "/v2/models/m/ready/",
    "/v2/health/other",
    "/v2/health/ready/",
]


@pytest.mark.parametrize(("path", "params"), PROBES.items())
def test_a_probe_route_is_a_probe(path: str, params: dict[str, str]) -> None:
    match = TABLE.match(path)
    assert match.route.access is Access.PROBE and match.params == params


def test_a_model_or_version_named_ready_is_a_metadata_route_not_a_probe() -> None:
    match = TABLE.match("/v2/models/ready")
    assert (match.route.path, match.route.access) == ("/v2/models/{model_name}", Access.API)
    assert match.params == {"model_name": "ready"}
    match = TABLE.match("/v2/models/m/versions/ready")
    assert (match.route.name, match.route.access) == ("version_metadata", Access.API)
    assert match.params == {"model_name": "m", "model_version": "ready"}


@pytest.mark.parametrize("path", LOOK_ALIKES)
def test_a_path_that_only_looks_like_a_probe_is_unknown_api_work(path: str) -> None:
    match = TABLE.match(path)
    assert (match.route.path, match.route.access) == (UNKNOWN_ROUTE, Access.API)


@pytest.mark.parametrize("path", ["/health/other", "/healthz", "/v1", "/favicon.ico"])
def test_other_unknown_paths_are_open_and_labelled_other(path: str) -> None:
    match = TABLE.match(path)
    assert (match.route.path, match.route.access) == (UNKNOWN_ROUTE, Access.OPEN)


def test_the_hot_routes_are_the_classify_routes_and_take_a_body() -> None:
    hot = {(r.method, r.path) for r in ROUTES if r.hot}
    assert hot == {
        ("POST", "/v1/classify"),
        ("POST", "/v1/classify/batch"),
        ("POST", "/predict"),
        ("POST", "/"),  # TEI answers /predict there for a classifier
        ("POST", "/v2/models/{model_name}/infer"),
        ("POST", "/v2/models/{model_name}/versions/{model_version}/infer"),
    }
    assert all(r.body.value != "none" and r.access is Access.API for r in ROUTES if r.hot)


def test_the_infer_routes_bind_their_model_and_version() -> None:
    match = TABLE.match("/v2/models/sentiment/versions/3/infer")
    assert match.route.name == "version_infer"
    assert match.params == {"model_name": "sentiment", "model_version": "3"}
    assert TABLE.match("/v2/models/sentiment/infer").params == {"model_name": "sentiment"}


def test_a_path_parameter_takes_the_rest_of_the_path() -> None:
    match = TABLE.match("/docs/assets/swagger-ui/x.js")
    assert match.route.name == "docs_assets" and match.params == {"path": "swagger-ui/x.js"}
    assert TABLE.match("/docs/assets/").route.path == UNKNOWN_ROUTE


def test_every_route_is_declared_once_with_its_own_name_and_label() -> None:
    assert len({r.name for r in ROUTES}) == len({r.path for r in ROUTES}) == len(ROUTES)
    assert TABLE.labels() == [r.path for r in ROUTES]
    for route in ROUTES:  # a template's own path matches it
        assert TABLE.match(route.path.replace("{path:path}", "x")).route is route
