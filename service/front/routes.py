"""HTTP routes: the model summary, metrics, liveness and readiness; and the OpenAPI description of
the classify routes, which service.front.fast_lane answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from service.front.errors import ErrorType, error_response
from service.front.metrics import CONTENT_TYPE
from service.front.runtime import Runtime
from service.front.schemas import (
    BatchClassification,
    BatchClassifyRequest,
    Classification,
    ClassifyRequest,
    ErrorBody,
    Health,
    Predictions,
    PredictRequest,
    text_schema,
)

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 413, 415, 422, 503)}
Documented = Callable[[], Awaitable[None]]


def json_body(model: type[BaseModel], limits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI request body of a classify route (it validates its own body).

    `limits` adds the checks done in code (configured lengths, visible text) to the fields'
    schemas, so clients and schema-based fuzzers see what the service accepts.
    """
    schema = model.model_json_schema()
    for name, extra in limits.items():
        schema["properties"][name] |= extra
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def build_router(runtime: Runtime) -> APIRouter:
    """All routes, bound to one Runtime."""
    router = APIRouter()
    settings = runtime.settings

    def classify_route(
        path: str, body: type[BaseModel], limits: dict[str, dict[str, Any]], response: type[BaseModel]
    ) -> Callable[[Documented], Documented]:
        """Document a classify route: its name and docstring, body and answers. service.front.fast_lane
        answers every POST to it before FastAPI routes anything; FastAPI answers the other methods."""

        def register(endpoint: Documented) -> Documented:
            router.add_api_route(
                path,
                endpoint,
                methods=["POST"],
                response_model=response,
                responses=ERRORS,
                tags=["classify"],
                openapi_extra=json_body(body, limits),
            )
            return endpoint

        return register

    text = text_schema(settings.max_text_chars)
    batch = {"texts": {"minItems": 1, "maxItems": settings.max_batch, "items": text}}
    listed = {"type": "array", "items": text, "minItems": 1, "maxItems": settings.max_batch}
    singles = {"type": "array", "items": {"type": "array", "items": text, "minItems": 1, "maxItems": 1}}
    inputs = {"inputs": {"anyOf": [text, listed, singles | {"minItems": 1, "maxItems": settings.max_batch}]}}

    @classify_route("/v1/classify", ClassifyRequest, {"text": text}, Classification)
    async def classify() -> None:
        """Classify one text."""
        raise AssertionError("answered by service.front.fast_lane")

    @classify_route("/v1/classify/batch", BatchClassifyRequest, batch, BatchClassification)
    async def classify_batch() -> None:
        """Classify a list of texts, each on its own (unpadded) and through the same cache."""
        raise AssertionError("answered by service.front.fast_lane")

    @classify_route("/predict", PredictRequest, inputs, Predictions)
    async def predict() -> None:
        """text-embeddings-inference's classify route: the same cache, limits, errors and metrics."""
        raise AssertionError("answered by service.front.fast_lane")

    @router.get("/v1/model", tags=["model"])
    async def model() -> dict[str, Any]:
        """The loaded model's manifest summary: name, version, labels, limits, accuracy, latency."""
        return runtime.require_ready().artifact.summary() | {
            "limits": {"max_text_chars": settings.max_text_chars, "max_batch": settings.max_batch}
        }

    @router.get("/metrics", tags=["metrics"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus metrics, aggregated over every HTTP process and its model workers."""
        runtime.metrics.sample_process(runtime.loaded.inference.backend.pids() if runtime.loaded else ())
        return PlainTextResponse(runtime.metrics.render(), media_type=CONTENT_TYPE)

    @router.get("/health/live", response_model=Health, responses={503: {"model": ErrorBody}}, tags=["health"])
    async def live() -> Health | Response:
        """The process answers, and its models have not all been unable to serve for too long."""
        unready = runtime.loaded.inference.backend.unready_seconds() if runtime.loaded else 0.0
        if unready > settings.unready_liveness_seconds:
            message = f"no model worker has been ready for {unready:.0f} s"
            return error_response(ErrorType.MODEL_UNAVAILABLE, message)
        return Health(status="alive")

    @router.get(
        "/health/ready", response_model=Health, responses={503: {"model": ErrorBody}}, tags=["health"]
    )
    async def ready() -> Health | Response:
        """A model worker can take a job now: loaded, warm, not all stuck or restarting."""
        if runtime.loaded is None:
            return error_response(ErrorType.NOT_READY, "model is not loaded yet")
        if runtime.stopping:
            return error_response(ErrorType.NOT_READY, "shutting down")
        if not runtime.loaded.inference.backend.ready:
            return error_response(ErrorType.NOT_READY, "no model worker can take a job (restarting)")
        return Health(status="ready")

    return router
