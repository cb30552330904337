"""HTTP routes: the model summary, metrics, liveness and readiness; and the OpenAPI description of
the classify routes, which service.front.fast_lane answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from service import NAME, VERSION
from service.front import open_inference
from service.front.error_responses import error_response
from service.front.errors import ErrorType
from service.front.metrics import CONTENT_TYPE
from service.front.runtime import Runtime
from service.front.schemas import (
    BatchClassification,
    BatchClassifyRequest,
    Classification,
    ClassifyRequest,
    Empty,
    ErrorBody,
    Health,
    ModelMetadata,
    Predictions,
    PredictRequest,
    ServerMetadata,
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

    def unlive() -> Response | None:
        """503 `model_unavailable` once no model has been able to serve for too long."""
        unready = runtime.loaded.inference.backend.unready_seconds() if runtime.loaded else 0.0
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
        if not runtime.loaded.inference.backend.ready:
            return error_response(ErrorType.NOT_READY, "no model worker can take a job (restarting)")
        return None

    @router.get("/health/live", response_model=Health, responses={503: {"model": ErrorBody}}, tags=["health"])
    async def live() -> Health | Response:
        """The process answers, and its models have not all been unable to serve for too long."""
        return unlive() or Health(status="alive")

    @router.get(
        "/health/ready", response_model=Health, responses={503: {"model": ErrorBody}}, tags=["health"]
    )
    async def ready() -> Health | Response:
        """A model worker can take a job now: loaded, warm, not all stuck or restarting."""
        return unready() or Health(status="ready")

    # The Open Inference Protocol (KServe v2): metadata and health here; infer is answered by
    # service.front.fast_lane with service.front.open_inference, and documented here.
    v2: list[str | Enum] = ["open inference protocol"]
    not_found: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 503: {"model": ErrorBody}}

    @router.get("/v2", response_model=ServerMetadata, tags=v2)
    async def server_metadata() -> ServerMetadata:
        """Server metadata: name, version and the protocol extensions it supports."""
        return ServerMetadata(name=NAME, version=VERSION, extensions=["binary_tensor_data"])

    @router.get("/v2/health/live", response_model=Empty, responses={503: {"model": ErrorBody}}, tags=v2)
    async def v2_live() -> Empty | Response:
        """Live: as /health/live."""
        return unlive() or Empty()

    @router.get("/v2/health/ready", response_model=Empty, responses={503: {"model": ErrorBody}}, tags=v2)
    async def v2_ready() -> Empty | Response:
        """Ready: as /health/ready."""
        return unready() or Empty()

    def metadata_of(model_name: str, model_version: str | None) -> ModelMetadata:
        artifact = runtime.require_ready().artifact
        served = {"model_name": model_name} | ({"model_version": model_version} if model_version else {})
        open_inference.check_model(served, artifact.name, artifact.version)
        return ModelMetadata.model_validate(
            open_inference.metadata(artifact.name, artifact.version, artifact.labels)
        )

    async def model_metadata(model_name: str) -> ModelMetadata:
        """The model's name, version and tensors: one BYTES input, label and score outputs."""
        return metadata_of(model_name, None)

    async def version_metadata(model_name: str, model_version: str) -> ModelMetadata:
        """The model's metadata, for its one version."""
        return metadata_of(model_name, model_version)

    async def model_ready(model_name: str) -> Empty | Response:
        """The model is ready: as /health/ready, for this model's name."""
        metadata_of(model_name, None)
        return unready() or Empty()

    async def version_ready(model_name: str, model_version: str) -> Empty | Response:
        """The model's one version is ready: as /health/ready."""
        metadata_of(model_name, model_version)
        return unready() or Empty()

    async def infer(model_name: str, request: open_inference.InferRequest) -> open_inference.InferResponse:
        """Classify texts: one BYTES input "text", shape [n] or [n, 1], in JSON or binary tensor data
        (Inference-Header-Content-Length); outputs "label", "score", "scores"; parameters
        "raw_scores", "truncate", "binary_data_output". Same cache, limits, auth, errors and metrics
        as /v1/classify/batch."""
        raise AssertionError("answered by service.front.fast_lane")

    async def version_infer(
        model_name: str, model_version: str, request: open_inference.InferRequest
    ) -> open_inference.InferResponse:
        """Infer, naming the model's one version."""
        raise AssertionError("answered by service.front.fast_lane")

    unversioned = "/v2/models/{model_name}"
    versioned = unversioned + "/versions/{model_version}"
    for path, get, ready_, post in (
        (unversioned, model_metadata, model_ready, infer),
        (versioned, version_metadata, version_ready, version_infer),
    ):
        router.add_api_route(path, get, methods=["GET"], responses=not_found, tags=v2)
        router.add_api_route(
            path + "/ready", ready_, methods=["GET"], response_model=Empty, responses=not_found, tags=v2
        )
        router.add_api_route(path + "/infer", post, methods=["POST"], responses=ERRORS | not_found, tags=v2)

    return router
