"""Which paths are classification work (authenticated, admitted, counted in flight), as opposed to
probes, scrapes and docs."""

from __future__ import annotations

API_PREFIX = "/v1/"
# Routes outside /v1/ kept for other services' clients: text-embeddings-inference's /predict.
COMPATIBLE_ROUTES = frozenset({"/predict"})


def is_api(path: str) -> bool:
    """Whether `path` is API work."""
    return path.startswith(API_PREFIX) or path in COMPATIBLE_ROUTES
