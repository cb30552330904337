"""Which paths are classification work (authenticated, admitted, counted in flight), and which are
Kubernetes' probes."""

from __future__ import annotations

API_PREFIX = "/v1/"
# Routes outside /v1/ kept for other services' clients: text-embeddings-inference's /predict.
COMPATIBLE_ROUTES = frozenset({"/predict"})


PROBE_PREFIX = "/health/"


def is_api(path: str) -> bool:
    """Whether `path` is API work."""
    return path.startswith(API_PREFIX) or path in COMPATIBLE_ROUTES


def is_probe(path: str) -> bool:
    """Whether `path` is a liveness or readiness probe."""
    return path.startswith(PROBE_PREFIX)
