"""The routes FastAPI answers (the cold ones): the model summary, metrics, liveness and readiness,
and the Open Inference Protocol's metadata; each added at the route table's path and method."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from service import NAME, VERSION
from service.front.api import open_inference
from service.front.api.error_responses import error_response
from service.front.api.openapi import NOT_FOUND, V2
from service.front.api.schemas import Empty, ErrorBody, Health, ModelMetadata, ServerMetadata
from service.front.core.errors import ErrorType
from service.front.edge.route_table import Access, RouteTable
from service.front.runtime import Runtime
from service.front.telemetry.metrics import CONTENT_TYPE

Endpoint = Callable[..., Awaitable[Any]]


def build_router(runtime: Runtime, table: RouteTable) -> APIRouter:
    """The cold routes, bound to one Runtime, at the table's paths and methods."""
    router = APIRouter()
    settings = runtime.settings

    endpoints: dict[str, tuple[Endpoint, dict[str, Any]]] = {}

    def endpoint(**documented: Any) -> Callable[[Endpoint], Endpoint]:
        """Keep an endpoint, by its name (the route table's), with what its OpenAPI entry says."""

        def keep(function: Endpoint) -> Endpoint:
            endpoints[function.__name__] = (function, documented)
            return function

        return keep

    @endpoint(tags=["model"])
    async def model() -> dict[str, Any]:
        """The loaded model's manifest summary: name, version, labels, limits, accuracy, latency."""
        loaded = runtime.require_loaded()
        backend = loaded.backend
        return loaded.artifact.summary() | {
            "limits": {"max_text_chars": settings.max_text_chars, "max_batch": settings.max_batch},
            "graph": {
                "available": list(loaded.artifact.graphs),
                "serving": backend.graphs(),
                "choice": backend.graph_choice,
            },
        }

    @endpoint(tags=["metrics"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus metrics, aggregated over every HTTP process and its model workers."""
        runtime.metrics.sample_process(runtime.loaded.backend.pids() if runtime.loaded else ())
        return PlainTextResponse(runtime.metrics.render(), media_type=CONTENT_TYPE)

    def unlive() -> Response | None:
        """503 `model_unavailable` once no model has been able to serve for too long."""
        unready = runtime.loaded.backend.unready_seconds() if runtime.loaded else 0.0
        if unready > settings.unready_liveness_seconds:
            return error_response(
                ErrorType.MODEL_UNAVAILABLE, f"no model worker has been ready for {unready:.0f} s"
            )
        return None

    def unready() -> Response | None:
        """503 `not_ready` unless a model worker can take a job now."""
        if runtime.loaded is None:
            return error_response(ErrorType.NOT_READY, "model is not loaded yet")
        if runtime.stopping:
            return error_response(ErrorType.NOT_READY, "shutting down")
        if not runtime.loaded.backend.ready:
            return error_response(ErrorType.NOT_READY, "no model worker can take a job (restarting)")
        return None

    probe: dict[str, Any] = {"responses": {503: {"model": ErrorBody}}}

    @endpoint(response_model=Health, tags=["health"], **probe)
    async def live() -> Health | Response:
        """The process answers, and its models have not all been unable to serve for too long."""
        return unlive() or Health(status="alive")

    @endpoint(response_model=Health, tags=["health"], **probe)
    async def ready() -> Health | Response:
        """A model worker can take a job now: loaded, warm, not all stuck or restarting."""
        return unready() or Health(status="ready")

    # The Open Inference Protocol (KServe v2): metadata and health here; infer is answered by the
    # edge (service.front.api.classify_routes).
    @endpoint(response_model=ServerMetadata, tags=V2)
    async def server_metadata() -> ServerMetadata:
        """Server metadata: name, version and the protocol extensions it supports."""
        return ServerMetadata(name=NAME, version=VERSION, extensions=["binary_tensor_data"])

    @endpoint(response_model=Empty, tags=V2, **probe)
    async def v2_live() -> Empty | Response:
        """Live: as /health/live."""
        return unlive() or Empty()

    @endpoint(response_model=Empty, tags=V2, **probe)
    async def v2_ready() -> Empty | Response:
        """Ready: as /health/ready."""
        return unready() or Empty()

    def metadata_of(model_name: str, model_version: str | None) -> ModelMetadata:
        artifact = runtime.require_loaded().artifact
        served = {"model_name": model_name} | ({"model_version": model_version} if model_version else {})
        open_inference.check_model(served, artifact.name, artifact.version)
        return ModelMetadata.model_validate(
            open_inference.metadata(artifact.name, artifact.version, artifact.labels, artifact.multi_label)
        )

    @endpoint(responses=NOT_FOUND, tags=V2)
    async def model_metadata(model_name: str) -> ModelMetadata:
        """The model's name, version and tensors: one BYTES input, label and score outputs."""
        return metadata_of(model_name, None)

    @endpoint(responses=NOT_FOUND, tags=V2)
    async def version_metadata(model_name: str, model_version: str) -> ModelMetadata:
        """The model's metadata, for its one version."""
        return metadata_of(model_name, model_version)

    @endpoint(response_model=Empty, responses=NOT_FOUND, tags=V2)
    async def model_ready(model_name: str) -> Empty | Response:
        """The model is ready: as /health/ready, for this model's name."""
        metadata_of(model_name, None)
        return unready() or Empty()

    @endpoint(response_model=Empty, responses=NOT_FOUND, tags=V2)
    async def version_ready(model_name: str, model_version: str) -> Empty | Response:
        """The model's one version is ready: as /health/ready."""
        metadata_of(model_name, model_version)
        return unready() or Empty()

    for route in table.routes:
        if route.hot or route.access is Access.OPEN:
            continue  # answered by the edge (documented by service.front.api.openapi), or the docs
        function, documented = endpoints.pop(route.name)
        router.add_api_route(route.path, function, methods=[route.method], name=route.name, **documented)
    assert not endpoints, f"endpoints no route has: {sorted(endpoints)}"
    return router
