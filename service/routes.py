"""HTTP routes: classify (one text or a list, and TEI's /predict), model summary, liveness and readiness."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from service.artifact import Artifact
from service.classifier import Prediction
from service.config import Settings
from service.errors import ErrorType, ServiceError, error_response
from service.inference import Inference, Outcome
from service.metrics import CONTENT_TYPE, Metrics
from service.schemas import (
    VISIBLE,
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
Body = TypeVar("Body", bound=BaseModel)


class RequestOnlyRoute(APIRoute):
    """A route whose endpoint takes just the Request and reads its body with `parse_body`.

    It skips FastAPI's per-request parameter machinery (content-type parsing, dependency
    solving, body validation), which cost ~0.3 ms of a ~5 ms classify request at low load.
    The OpenAPI schema still comes from the route's declared models.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


async def parse_body(request: Request, model: type[Body]) -> Body:
    """Parse strict JSON and validate it in pydantic-core; errors go to the same handler as FastAPI's."""
    try:
        # NaN and Infinity are not JSON (RFC 8259), though most parsers accept them by default.
        data = from_json(await request.body(), allow_inf_nan=False)
    except ValueError:
        raise ServiceError(ErrorType.INVALID_JSON, "request body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise RequestValidationError(err.errors(include_url=False)) from None


def json_body(model: type[BaseModel], limits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its body with `parse_body`.

    `limits` adds the checks done in code (configured lengths, visible text) to the fields'
    schemas, so clients and schema-based fuzzers see what the service accepts.
    """
    schema = model.model_json_schema()
    for name, extra in limits.items():
        schema["properties"][name] |= extra
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@dataclass(frozen=True)
class Loaded:
    """The model a worker serves, once loaded and warmed up."""

    artifact: Artifact
    inference: Inference
    model_ref: dict[str, str] = field(init=False)  # in every response: built once

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_ref", {"name": self.artifact.name, "version": self.artifact.version})


@dataclass
class Runtime:
    """What the lifespan loads and the routes use; `loaded` is set only after warm-up."""

    settings: Settings
    metrics: Metrics
    loaded: Loaded | None = None
    stopping: bool = False  # SIGTERM arrived: draining

    def require_ready(self) -> Loaded:
        if self.loaded is None:
            raise ServiceError(ErrorType.NOT_READY, "model is not loaded yet")
        return self.loaded


def normalize(text: str, max_chars: int, where: str = "text") -> str:
    """The one normalization applied before both the cache and the model: strip outer whitespace."""
    if len(text) > max_chars:
        raise ServiceError(
            ErrorType.TEXT_TOO_LONG, f"{where} has {len(text)} characters; the limit is {max_chars}"
        )
    stripped = text.strip()
    # search() stops at the first visible character, so real text costs one step.
    if VISIBLE.search(stripped) is None:
        raise ServiceError(ErrorType.EMPTY_TEXT, f"{where} has no visible characters")
    return stripped


def build_router(runtime: Runtime) -> APIRouter:
    """All routes, bound to one Runtime."""
    router = APIRouter()
    settings = runtime.settings

    # Responses are built as plain dicts and returned as JSONResponse: FastAPI then skips
    # re-validating them against response_model (which still documents them), ~0.1 ms a request.
    def to_response(loaded: Loaded, outcome: Outcome) -> dict[str, Any]:
        p = outcome.prediction
        return {
            "label": p.label,
            "score": p.score,
            "scores": dict(zip(loaded.artifact.labels, p.scores, strict=True)),
            "tokens": p.tokens,
            "truncated": p.truncated,
            "cached": outcome.cached,
            "model": loaded.model_ref,
        }

    Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]

    text = text_schema(settings.max_text_chars)
    batch = {"texts": {"minItems": 1, "maxItems": settings.max_batch, "items": text}}

    def classify_route(
        path: str, body: type[BaseModel], limits: dict[str, dict[str, Any]], response: type[BaseModel]
    ) -> Callable[[Endpoint], Endpoint]:
        def register(endpoint: Endpoint) -> Endpoint:
            router.add_api_route(
                path,
                endpoint,
                methods=["POST"],
                response_model=response,
                responses=ERRORS,
                tags=["classify"],
                openapi_extra=json_body(body, limits),
                route_class_override=RequestOnlyRoute,
            )
            return endpoint

        return register

    @classify_route("/v1/classify", ClassifyRequest, {"text": text}, Classification)
    async def classify(request: Request) -> Response:
        """Classify one text."""
        loaded = runtime.require_ready()
        body = await parse_body(request, ClassifyRequest)
        outcome = await loaded.inference.classify(normalize(body.text, settings.max_text_chars))
        t = outcome.timing
        # Stage times in ms (as TEI does), so a load test can tell queueing from compute.
        headers = {
            "X-Cache": "hit" if outcome.cached else "miss",
            "X-Queue-Time": f"{t.queue * 1e3:.3f}",
            "X-Tokenize-Time": f"{t.tokenize * 1e3:.3f}",
            "X-Inference-Time": f"{t.inference * 1e3:.3f}",
        }
        return JSONResponse(to_response(loaded, outcome), headers=headers)

    def check_batch_size(count: int, field: str) -> None:
        if not count:
            raise ServiceError(ErrorType.EMPTY_TEXT, f"{field} is empty")
        if count > settings.max_batch:
            limit = settings.max_batch
            raise ServiceError(ErrorType.TOO_MANY_TEXTS, f"{count} {field}; the limit is {limit}")

    @classify_route("/v1/classify/batch", BatchClassifyRequest, batch, BatchClassification)
    async def classify_batch(request: Request) -> Response:
        """Classify a list of texts, each on its own (unpadded) and through the same cache."""
        loaded = runtime.require_ready()
        body = await parse_body(request, BatchClassifyRequest)
        check_batch_size(len(body.texts), "texts")
        texts = [normalize(t, settings.max_text_chars, f"texts[{i}]") for i, t in enumerate(body.texts)]
        outcomes = await loaded.inference.classify_many(texts)
        return JSONResponse({"results": [to_response(loaded, o) for o in outcomes]})

    def tei_text(item: str | list[str], where: str) -> str:
        if isinstance(item, str):
            return item
        if len(item) != 1:
            raise ServiceError(
                ErrorType.VALIDATION,
                f"{where} holds {len(item)} texts; this model classifies single texts, not pairs",
            )
        return item[0]

    def label_scores(loaded: Loaded, p: Prediction, raw: bool) -> list[dict[str, Any]]:
        values = p.logits if raw else p.scores
        order = sorted(range(len(values)), key=p.scores.__getitem__, reverse=True)
        return [{"label": loaded.artifact.labels[i], "score": values[i]} for i in order]

    listed = {"type": "array", "items": text, "minItems": 1, "maxItems": settings.max_batch}
    singles = {"type": "array", "items": {"type": "array", "items": text, "minItems": 1, "maxItems": 1}}
    inputs = {"inputs": {"anyOf": [text, listed, singles | {"minItems": 1, "maxItems": settings.max_batch}]}}

    @classify_route("/predict", PredictRequest, inputs, Predictions)
    async def predict(request: Request) -> Response:
        """text-embeddings-inference's classify route: the same cache, limits, errors and metrics."""
        loaded = runtime.require_ready()
        body = await parse_body(request, PredictRequest)
        single = isinstance(body.inputs, str)
        items: list[str | list[str]] = [body.inputs] if isinstance(body.inputs, str) else [*body.inputs]
        where = ["inputs"] if single else [f"inputs[{i}]" for i in range(len(items))]
        check_batch_size(len(items), "inputs")
        texts = [
            normalize(tei_text(t, w), settings.max_text_chars, w) for t, w in zip(items, where, strict=True)
        ]
        outcomes = await loaded.inference.classify_many(texts)
        if not body.truncate:
            for outcome, w in zip(outcomes, where, strict=True):
                if outcome.prediction.truncated:
                    raise ServiceError(
                        ErrorType.TOO_MANY_TOKENS,
                        f"{w} is longer than the model's {loaded.artifact.max_sequence_length} tokens; "
                        'send "truncate": true to classify its start',
                    )
        results = [label_scores(loaded, o.prediction, body.raw_scores) for o in outcomes]
        return JSONResponse(results[0] if single else results)

    @router.get("/v1/model", tags=["model"])
    async def model() -> dict[str, Any]:
        """The loaded model's manifest summary: name, version, labels, limits, accuracy, latency."""
        return runtime.require_ready().artifact.summary() | {
            "limits": {"max_text_chars": settings.max_text_chars, "max_batch": settings.max_batch}
        }

    @router.get("/metrics", tags=["metrics"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus metrics, aggregated over every worker process."""
        runtime.metrics.sample_process(runtime.loaded.inference.backend.pids() if runtime.loaded else ())
        return PlainTextResponse(runtime.metrics.render(), media_type=CONTENT_TYPE)

    @router.get("/health/live", response_model=Health, responses={503: {"model": ErrorBody}}, tags=["health"])
    async def live() -> Health | JSONResponse:
        """The process answers, and its models have not all been unable to serve for too long."""
        unready = runtime.loaded.inference.backend.unready_seconds() if runtime.loaded else 0.0
        if unready > settings.unready_liveness_seconds:
            message = f"no model worker has been ready for {unready:.0f} s"
            return error_response(ErrorType.MODEL_UNAVAILABLE, message)
        return Health(status="alive")

    @router.get(
        "/health/ready", response_model=Health, responses={503: {"model": ErrorBody}}, tags=["health"]
    )
    async def ready() -> Health | JSONResponse:
        """A model worker can take a job now: loaded, warm, not all stuck or restarting."""
        if runtime.loaded is None:
            return error_response(ErrorType.NOT_READY, "model is not loaded yet")
        if runtime.stopping:
            return error_response(ErrorType.NOT_READY, "shutting down")
        if not runtime.loaded.inference.backend.ready:
            return error_response(ErrorType.NOT_READY, "no model worker can take a job (restarting)")
        return Health(status="ready")

    return router
