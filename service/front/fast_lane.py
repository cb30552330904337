"""The hot routes (POST /v1/classify, /v1/classify/batch, /predict) as bare ASGI handlers, and the
middleware that hands them their requests without FastAPI.

FastAPI's per-request machinery (routing, the effective-route context, Request objects, exception
middleware, response classes) cost ~160 µs of CPU a request against ~35 µs for uvicorn and a bare
ASGI callable (BENCHMARKS.md). A hot request still passes the pure-ASGI middlewares (request id,
timing, auth, body guard, admission) like any other; from there it is one function: the body the
guard read, decoded and validated in one step, normalized, the cache or the pool, one JSON encode
and prebuilt header bytes. FastAPI still documents these routes (service.front.routes registers them
with their models) and answers any other method on their paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json, to_json
from starlette.requests import ClientDisconnect

from service.front import open_inference
from service.front.asgi import ASGIApp, Receive, Scope, Send
from service.front.errors import ErrorType, ServiceError, describe_validation, send_error
from service.front.inference import Outcome
from service.front.runtime import Loaded, Runtime
from service.front.schemas import VISIBLE, BatchClassifyRequest, ClassifyRequest, PredictRequest
from service.prediction import Prediction, Timing

Body = TypeVar("Body", bound=BaseModel)
Header = tuple[bytes, bytes]
Headers = Sequence[Header]
JSON_TYPE = (b"content-type", b"application/json")
BINARY_TYPE = (b"content-type", b"application/octet-stream")
# A hit computed nothing: its stage times are zero (ms, as TEI's headers).
HIT_HEADERS: Headers = (
    (b"x-cache", b"hit"),
    (b"x-queue-time", b"0.000"),
    (b"x-tokenize-time", b"0.000"),
    (b"x-inference-time", b"0.000"),
)


def miss_headers(t: Timing) -> Headers:
    """Stage times in ms (as TEI does), so a load test can tell queueing from compute."""
    return (
        (b"x-cache", b"miss"),
        (b"x-queue-time", b"%.3f" % (t.queue * 1e3)),
        (b"x-tokenize-time", b"%.3f" % (t.tokenize * 1e3)),
        (b"x-inference-time", b"%.3f" % (t.inference * 1e3)),
    )


def encode(content: Any) -> bytes:
    """Compact UTF-8 JSON, encoded in pydantic-core (5x faster than json.dumps). Scores are finite:
    service.model.classifier refuses NaN logits."""
    return to_json(content)


async def answer(send: Send, payload: bytes, headers: Headers = (), content_type: Header = JSON_TYPE) -> None:
    """A 200 response, JSON unless said otherwise."""
    start = [(b"content-length", b"%d" % len(payload)), content_type, *headers]
    await send({"type": "http.response.start", "status": 200, "headers": start})
    await send({"type": "http.response.body", "body": payload})


async def read_body(receive: Receive) -> bytes:
    """The whole body (service.front.guards.BodyGuard has read it within the limits: one message)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect  # service.front.unhandled answers 499
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse(body: bytes, model: type[Body]) -> Body:
    """Strict JSON, validated against `model` in pydantic-core: 400 `invalid_json` or 422."""
    try:
        # NaN and Infinity are not JSON (RFC 8259), though most parsers accept them by default.
        data = from_json(body, allow_inf_nan=False)
    except ValueError:
        raise ServiceError(ErrorType.INVALID_JSON, "request body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ServiceError(ErrorType.VALIDATION, describe_validation(err.errors(include_url=False))) from None


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


Route = Callable[[Loaded, bytes], Awaitable[tuple[bytes, Headers]]]


class HotRoutes:
    """The classify routes' handlers, bound to one Runtime; errors answered from the one error table."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.max_chars = runtime.settings.max_text_chars
        self.max_batch = runtime.settings.max_batch

    def handlers(self) -> dict[str, ASGIApp]:
        """Each hot path's ASGI handler."""
        return {
            "/v1/classify": self._handler(self.classify),
            "/v1/classify/batch": self._handler(self.classify_batch),
            "/predict": self._handler(self.predict),
        }

    def _handler(self, route: Route) -> ASGIApp:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                loaded = self.runtime.require_ready()
                payload, headers = await route(loaded, await read_body(receive))
            except ServiceError as err:
                await send_error(send, err.error_type, err.message)
                return
            await answer(send, payload, headers)

        return handle

    async def classify(self, loaded: Loaded, body: bytes) -> tuple[bytes, Headers]:
        """Classify one text."""
        request = parse(body, ClassifyRequest)
        outcome = await loaded.inference.classify(normalize(request.text, self.max_chars))
        headers = HIT_HEADERS if outcome.cached else miss_headers(outcome.timing)
        return encode(_result(loaded, outcome)), headers

    async def classify_batch(self, loaded: Loaded, body: bytes) -> tuple[bytes, Headers]:
        """Classify a list of texts, each on its own (unpadded) and through the same cache."""
        texts = parse(body, BatchClassifyRequest).texts
        outcomes = await self._classify_many(loaded, texts, "texts")
        return encode({"results": [_result(loaded, o) for o in outcomes]}), ()

    async def predict(self, loaded: Loaded, body: bytes) -> tuple[bytes, Headers]:
        """text-embeddings-inference's classify route: the same cache, limits, errors and metrics."""
        request = parse(body, PredictRequest)
        inputs = request.inputs
        single = isinstance(inputs, str)
        items: list[str | list[str]] = [inputs] if isinstance(inputs, str) else [*inputs]
        where = ["inputs"] if single else [f"inputs[{i}]" for i in range(len(items))]
        texts = [_tei_text(t, w) for t, w in zip(items, where, strict=True)]
        cut = None if request.truncate else 'send "truncate": true'
        outcomes = await self._classify_many(loaded, texts, "inputs", where=where, refuse_cut=cut)
        results = [_label_scores(loaded, o.prediction, request.raw_scores) for o in outcomes]
        return encode(results[0] if single else results), ()

    async def infer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The Open Inference Protocol's infer route (service.front.open_inference), for the model
        and version FastLane found in the path."""
        try:
            loaded = self.runtime.require_ready()
            artifact = loaded.artifact
            open_inference.check_model(scope["path_params"], artifact.name, artifact.version)
            length_header = open_inference.JSON_LENGTH_HEADER
            json_length = next((v for k, v in scope["headers"] if k == length_header), None)
            head, binary = open_inference.split_body(await read_body(receive), json_length)
            request = parse(head, open_inference.InferRequest)
            asked = open_inference.read_request(
                request, binary, lambda count: self._check_batch_size(count, open_inference.INPUT)
            )
            cut = None if asked.truncate else 'send the parameter "truncate": true'
            outcomes = await self._classify_many(loaded, asked.texts, open_inference.INPUT, refuse_cut=cut)
            payload, head_length = open_inference.encode_response(
                asked, [o.prediction for o in outcomes], artifact.labels, artifact.name, artifact.version
            )
        except ServiceError as err:
            await send_error(send, err.error_type, err.message)
            return
        if head_length is None:
            await answer(send, payload)
        else:
            length = ((open_inference.JSON_LENGTH_HEADER, b"%d" % head_length),)
            await answer(send, payload, length, BINARY_TYPE)

    async def _classify_many(
        self,
        loaded: Loaded,
        texts: Sequence[str],
        field: str,
        where: Sequence[str] | None = None,
        refuse_cut: str | None = None,
    ) -> list[Outcome]:
        """The one path of every route that takes several texts: the batch bound, each text
        normalized (errors name it `field[i]`, or as `where` says), the cache and the model, and
        with `refuse_cut` (how to allow it) 413 for a text the model would have to cut."""
        self._check_batch_size(len(texts), field)
        where = where or [f"{field}[{i}]" for i in range(len(texts))]
        normalized = [normalize(t, self.max_chars, w) for t, w in zip(texts, where, strict=True)]
        outcomes = await loaded.inference.classify_many(normalized)
        if refuse_cut is not None:
            for outcome, w in zip(outcomes, where, strict=True):
                if outcome.prediction.truncated:
                    raise ServiceError(
                        ErrorType.TOO_MANY_TOKENS,
                        f"{w} is longer than the model's {loaded.artifact.max_sequence_length} tokens; "
                        f"{refuse_cut} to classify its start",
                    )
        return outcomes

    def _check_batch_size(self, count: int, field: str) -> None:
        if not count:
            raise ServiceError(ErrorType.EMPTY_TEXT, f"{field} is empty")
        if count > self.max_batch:
            raise ServiceError(ErrorType.TOO_MANY_TEXTS, f"{count} {field}; the limit is {self.max_batch}")


def _result(loaded: Loaded, outcome: Outcome) -> dict[str, Any]:
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


def _tei_text(item: str | list[str], where: str) -> str:
    if isinstance(item, str):
        return item
    if len(item) != 1:
        message = f"{where} holds {len(item)} texts; this model classifies single texts, not pairs"
        raise ServiceError(ErrorType.VALIDATION, message)
    return item[0]


def _label_scores(loaded: Loaded, p: Prediction, raw: bool) -> list[dict[str, Any]]:
    values = p.logits if raw else p.scores
    order = sorted(range(len(values)), key=p.scores.__getitem__, reverse=True)
    return [{"label": loaded.artifact.labels[i], "score": values[i]} for i in order]


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """What routing would have put in scope["route"]: the template metrics label the request by."""

    path: str


class FastLane:
    """ASGI middleware: a POST to a hot path goes straight to its handler; the rest on to FastAPI."""

    def __init__(self, app: ASGIApp, handlers: Mapping[str, ASGIApp], infer: ASGIApp) -> None:
        self.app = app
        self.handlers = dict(handlers)
        self.infer = infer  # the Open Inference Protocol's, whose path holds the model's name
        self._infer_routes = {
            False: RouteTemplate(open_inference.INFER_ROUTE),
            True: RouteTemplate(open_inference.VERSIONED_INFER_ROUTE),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            handler = self.handlers.get(path)
            if handler is not None:
                await handler(scope, receive, send)
                return
            model = open_inference.model_path(path)
            if model is not None:
                name, version = model
                scope["path_params"] = {"model_name": name} | ({"model_version": version} if version else {})
                scope["route"] = self._infer_routes[version is not None]
                await self.infer(scope, receive, send)
                return
        await self.app(scope, receive, send)
