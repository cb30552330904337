"""Every route the service answers, declared once, and the one matcher of a request's path.

The edge matches a request once (`RouteTable.match`) and puts the match in its scope; auth, the
body limits, admission, metrics, spans and access lines read the match, and FastAPI's router is
built from the same table (service.front.api.cold_routes), so no other code parses a path.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class Access(enum.Enum):
    """Who may call a route, and whether it is load."""

    API = "api"  # classification work: authenticated, admitted, traced
    PROBE = "probe"  # Kubernetes' liveness and readiness: open unless configured otherwise, never load
    METRICS = "metrics"  # Prometheus' scrape: open unless configured otherwise, never load
    OPEN = "open"  # the API's documentation


class Body(enum.Enum):
    """The request body a route takes."""

    NONE = "none"
    JSON = "json"  # application/json only
    TENSORS = "tensors"  # the Open Inference Protocol's JSON, or JSON then binary tensors, any type


@dataclass(frozen=True, slots=True)
class Route:
    """One route: its method, path template and name (its handler's and its OpenAPI operation's),
    who may call it and the body it takes. `path` is its label in metrics, spans and access lines
    (Starlette's name for a route's template, so FastAPI's routing reads the same attribute)."""

    method: str
    path: str
    name: str
    access: Access
    body: Body = Body.NONE
    hot: bool = False  # answered by the edge's own handlers; else by FastAPI
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.path.split("/")[1:]))


@dataclass(frozen=True, slots=True)
class Match:
    """A request's route and the values of its path parameters."""

    route: Route
    params: dict[str, str]


API_PREFIXES = ("/v1/", "/v2")  # a path under them is API work even if no route has it
UNKNOWN_ROUTE = "other"  # the label of a path no route has: unknown paths make no new label values
MODEL = "/v2/models/{model_name}"
VERSION = MODEL + "/versions/{model_version}"

ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/classify", "classify", Access.API, Body.JSON, hot=True),
    Route("POST", "/v1/classify/batch", "classify_batch", Access.API, Body.JSON, hot=True),
    Route("GET", "/v1/model", "model", Access.API),
    Route("GET", "/metrics", "metrics", Access.METRICS),
    Route("GET", "/health/live", "live", Access.PROBE),
    Route("GET", "/health/ready", "ready", Access.PROBE),
    # text-embeddings-inference's classify route, kept for its clients; and its default route for a
    # classifier, where Hugging Face's InferenceClient posts when given the service's URL.
    Route("POST", "/predict", "predict", Access.API, Body.JSON, hot=True),
    Route("POST", "/", "predict_at_root", Access.API, Body.JSON, hot=True),
    # The Open Inference Protocol (KServe v2).
    Route("GET", "/v2", "server_metadata", Access.API),
    Route("GET", "/v2/health/live", "v2_live", Access.PROBE),
    Route("GET", "/v2/health/ready", "v2_ready", Access.PROBE),
    Route("GET", MODEL, "model_metadata", Access.API),
    Route("GET", MODEL + "/ready", "model_ready", Access.PROBE),
    Route("POST", MODEL + "/infer", "infer", Access.API, Body.TENSORS, hot=True),
    Route("GET", VERSION, "version_metadata", Access.API),
    Route("GET", VERSION + "/ready", "version_ready", Access.PROBE),
    Route("POST", VERSION + "/infer", "version_infer", Access.API, Body.TENSORS, hot=True),
    # The documentation (service.front.api.docs), outside the OpenAPI document.
    Route("GET", "/openapi.json", "openapi", Access.OPEN),
    Route("GET", "/docs", "swagger_ui", Access.OPEN),
    Route("GET", "/redoc", "redoc", Access.OPEN),
    Route("GET", "/docs/assets/{path:path}", "docs_assets", Access.OPEN),
)


class RouteTable:
    """Matches a path to its route: static paths by one dict look-up, the rest segment by segment
    (a `{name}` parameter takes one non-empty segment, `{name:path}` the non-empty rest)."""

    def __init__(self, routes: Iterable[Route] = ROUTES) -> None:
        self.routes = tuple(routes)
        self._static = {r.path: r for r in self.routes if "{" not in r.path}
        self._templated = [r for r in self.routes if "{" in r.path]
        self._unknown = {
            api: Route("*", UNKNOWN_ROUTE, UNKNOWN_ROUTE, Access.API if api else Access.OPEN)
            for api in (False, True)
        }

    def match(self, path: str) -> Match:
        """The route of `path` whatever the method (a wrong one is answered 405 by its handler's
        router); a path no route has matches an unknown route, API work under API_PREFIXES."""
        route = self._static.get(path)
        if route is not None:
            return Match(route, {})
        segments = path.split("/")[1:]
        for route in self._templated:
            params = _bind(route.segments, segments)
            if params is not None:
                return Match(route, params)
        return Match(self._unknown[path.startswith(API_PREFIXES)], {})

    def named(self, name: str) -> Route:
        """The route of this name (a KeyError names one the table lacks)."""
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(f"no route named {name!r}")

    def labels(self) -> list[str]:
        """Every route's label, for the metrics' series created at start-up."""
        return [r.path for r in self.routes]


def _bind(template: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    """The path parameters if `segments` fit `template`, else None."""
    params: dict[str, str] = {}
    for i, part in enumerate(template):
        if part.startswith("{"):
            name, _, kind = part[1:-1].partition(":")
            if kind == "path":
                rest = "/".join(segments[i:])
                if not rest:
                    return None
                params[name] = rest
                return params
            if i >= len(segments) or not segments[i]:
                return None
            params[name] = segments[i]
        elif i >= len(segments) or segments[i] != part:
            return None
    return params if len(segments) == len(template) else None
