"""Which paths are classification work (authenticated, admitted, counted in flight), and which are
Kubernetes' probes."""

from __future__ import annotations

from service.front.open_inference import PREFIX as MODELS_PREFIX

API_PREFIXES = ("/v1/", "/v2")  # the service's own API, and the Open Inference Protocol's
# Routes outside them kept for other services' clients: text-embeddings-inference's /predict.
COMPATIBLE_ROUTES = frozenset({"/predict"})
PROBE_PREFIXES = ("/health/", "/v2/health/")


def is_api(path: str) -> bool:
    """Whether `path` is API work."""
    return (path.startswith(API_PREFIXES) and not is_probe(path)) or path in COMPATIBLE_ROUTES


def is_probe(path: str) -> bool:
    """Whether `path` is a liveness or readiness probe (the protocol's model readiness too)."""
    return path.startswith(PROBE_PREFIXES) or (path.startswith(MODELS_PREFIX) and path.endswith("/ready"))
