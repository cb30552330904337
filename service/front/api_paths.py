"""Which paths are classification work (authenticated, admitted, counted in flight), and which are
Kubernetes' probes."""

from __future__ import annotations

from collections.abc import Collection

from service.front.asgi import Scope
from service.front.open_inference import model_path

API_PREFIXES = ("/v1/", "/v2")  # the service's own API, and the Open Inference Protocol's
# Routes outside them kept for other services' clients: text-embeddings-inference's /predict.
COMPATIBLE_ROUTES = frozenset({"/predict"})
# The probe routes exactly, not a pattern: `/v2/models/ready` is the metadata of a model named
# "ready", API work like any other. The protocol's model readiness is matched by model_path below.
PROBE_ROUTES = frozenset({"/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready"})
UNKNOWN_ROUTE = "other"


def is_api(path: str) -> bool:
    """Whether `path` is API work."""
    return (path.startswith(API_PREFIXES) and not is_probe(path)) or path in COMPATIBLE_ROUTES


def is_probe(path: str) -> bool:
    """Whether `path` is a liveness or readiness probe route: the service's, the protocol's, and its
    model readiness `/v2/models/{name}[/versions/{version}]/ready` (one path segment each)."""
    return path in PROBE_ROUTES or model_path(path, "/ready") is not None


def route_template(scope: Scope, routes: Collection[str]) -> str:
    """What a request is labelled by in metrics, spans and access lines, never its raw path: the
    route routing (or the fast lane) matched; else its path if that is one of `routes` (no path
    parameters: a request refused before routing, 429, 413, 408...); else `other`, so unknown
    paths make no new label values."""
    path = scope["path"]
    return str(getattr(scope.get("route"), "path", path if path in routes else UNKNOWN_ROUTE))
