"""The classify routes' handlers, answered by the edge without FastAPI: POST /v1/classify,
/v1/classify/batch, TEI's /predict and the Open Inference Protocol's infer.

FastAPI's per-request machinery (routing, the effective-route context, Request objects, exception
middleware, response classes) cost ~160 µs of CPU a request against ~35 µs for uvicorn and a bare
ASGI callable (BENCHMARKS.md). Each handler is one function: the body the edge read within its
limits, decoded and validated in one step, the core's Classify, one JSON encode and prebuilt
header bytes. service.front.api.openapi documents them; the edge answers any other method on their
paths 405.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json, to_json

from service.front.api import open_inference
from service.front.api.schemas import (
    BatchClassifyRequest,
    ClassifyRequest,
    PredictParameters,
    PredictRequest,
)
from service.front.core.cached_dispatch import Outcome
from service.front.core.errors import ErrorType, ServiceError, describe_validation
from service.front.edge.edge import Handler, Headers
from service.front.edge.route_table import Match
from service.front.runtime import Loaded, Runtime
from service.prediction import Prediction, Timing
from service.scores import SCORE_FUNCTIONS

Body = TypeVar("Body", bound=BaseModel)
JSON_TYPE = (b"content-type", b"application/json")
BINARY_TYPE = (b"content-type", b"application/octet-stream")
# A hit computed nothing: its stage times are zero (ms, as TEI's headers).
HIT_HEADERS: Headers = (
    JSON_TYPE,
    (b"x-cache", b"hit"),
    (b"x-queue-time", b"0.000"),
    (b"x-tokenize-time", b"0.000"),
    (b"x-inference-time", b"0.000"),
)
JSON_HEADERS: Headers = (JSON_TYPE,)


def miss_headers(t: Timing) -> Headers:
    """Stage times in ms (as TEI does), so a load test can tell queueing from compute."""
    return (
        JSON_TYPE,
        (b"x-cache", b"miss"),
        (b"x-queue-time", b"%.3f" % (t.queue * 1e3)),
        (b"x-tokenize-time", b"%.3f" % (t.tokenize * 1e3)),
        (b"x-inference-time", b"%.3f" % (t.inference * 1e3)),
    )


def encode(content: Any) -> bytes:
    """Compact UTF-8 JSON, encoded in pydantic-core (5x faster than json.dumps). Scores are finite:
    service.model.classifier refuses NaN logits."""
    return to_json(content)


def parse(body: bytes, model: type[Body]) -> Body:
    """Strict JSON, validated against `model` in pydantic-core: 400 `invalid_json` or 422."""
    return validate(decode(body), model)


def decode(body: bytes) -> Any:
    """Strict JSON: 400 `invalid_json` else."""
    try:
        # NaN and Infinity are not JSON (RFC 8259), though most parsers accept them by default.
        return from_json(body, allow_inf_nan=False)
    except ValueError:
        raise ServiceError(ErrorType.INVALID_JSON, "request body is not valid JSON") from None


def validate(data: Any, model: type[Body]) -> Body:
    """`data` validated against `model`: 422 else."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ServiceError(ErrorType.VALIDATION, describe_validation(err.errors(include_url=False))) from None


class ClassifyRoutes:
    """The classify routes' handlers, bound to one Runtime, by route name (the route table's)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def handlers(self) -> dict[str, Handler]:
        """Each hot route's handler, by its name in the route table."""
        return {
            "classify": self.classify,
            "classify_batch": self.classify_batch,
            "predict": self.predict,
            "predict_at_root": self.predict,
            "infer": self.infer,
            "version_infer": self.infer,
        }

    async def classify(
        self, body: bytes, match: Match, headers: Mapping[bytes, bytes]
    ) -> tuple[bytes, Headers]:
        """Classify one text."""
        loaded = self.runtime.require_loaded()
        data = decode(body)
        # The common body, {"text": "..."}, is what ClassifyRequest takes without asking it (~3 µs
        # a request); any other is validated by it, for its answer or its error.
        valid = type(data) is dict and len(data) == 1 and type(data.get("text")) is str
        text = data["text"] if valid else validate(data, ClassifyRequest).text
        outcome = await loaded.classify.one(text)
        return encode(_result(loaded, outcome)), HIT_HEADERS if outcome.cached else miss_headers(
            outcome.timing
        )

    async def classify_batch(
        self, body: bytes, match: Match, headers: Mapping[bytes, bytes]
    ) -> tuple[bytes, Headers]:
        """Classify a list of texts, each on its own (unpadded) and through the same cache."""
        loaded = self.runtime.require_loaded()
        outcomes = await loaded.classify.many(parse(body, BatchClassifyRequest).texts, "texts")
        return encode({"results": [_result(loaded, o) for o in outcomes]}), JSON_HEADERS

    async def predict(
        self, body: bytes, match: Match, headers: Mapping[bytes, bytes]
    ) -> tuple[bytes, Headers]:
        """text-embeddings-inference's classify route, and Hugging Face's text-classification task
        (`parameters`: `top_k`, `function_to_apply`): the same cache, limits, errors and metrics."""
        loaded = self.runtime.require_loaded()
        request = parse(body, PredictRequest)
        inputs = request.inputs
        single = isinstance(inputs, str)
        items: list[str | list[str]] = [inputs] if isinstance(inputs, str) else [*inputs]
        where = ["inputs"] if single else [f"inputs[{i}]" for i in range(len(items))]
        texts = [_tei_text(t, w) for t, w in zip(items, where, strict=True)]
        scoring = _scoring(request)
        cut = None if request.truncate else 'send "truncate": true'
        outcomes = await loaded.classify.many(texts, "inputs", where=where, refuse_cut=cut)
        results = [scoring(loaded.artifact.labels, o.prediction) for o in outcomes]
        # Hugging Face's clients read a list per input (their pipelines' shape); TEI's, one list for one text.
        return encode(results[0] if single and request.parameters is None else results), JSON_HEADERS

    async def infer(self, body: bytes, match: Match, headers: Mapping[bytes, bytes]) -> tuple[bytes, Headers]:
        """Classify texts: one BYTES input "text", shape [n] or [n, 1], in JSON or binary tensor data
        (Inference-Header-Content-Length); outputs "label", "score", "scores" (and a multi-label
        model's BOOL "selected"); parameters
        "raw_scores", "truncate", "binary_data_output". Same cache, limits, auth, errors and metrics
        as /v1/classify/batch."""
        loaded = self.runtime.require_loaded()
        artifact = loaded.artifact
        open_inference.check_model(match.params, artifact.name, artifact.version)
        head, binary = open_inference.split_body(body, headers.get(open_inference.JSON_LENGTH_HEADER))
        request = parse(head, open_inference.InferRequest)
        asked = open_inference.read_request(
            request,
            binary,
            lambda count: loaded.classify.check_count(count, open_inference.INPUT),
            open_inference.outputs_of(artifact.multi_label),
        )
        cut = None if asked.truncate else 'send the parameter "truncate": true'
        outcomes = await loaded.classify.many(asked.texts, open_inference.INPUT, refuse_cut=cut)
        payload, head_length = open_inference.encode_response(
            asked, [o.prediction for o in outcomes], artifact.labels, artifact.name, artifact.version
        )
        if head_length is None:
            return payload, JSON_HEADERS
        return payload, ((open_inference.JSON_LENGTH_HEADER, b"%d" % head_length), BINARY_TYPE)


def _result(loaded: Loaded, outcome: Outcome) -> dict[str, Any]:
    p = outcome.prediction
    result = {"label": p.label, "score": p.score}
    if p.selected is not None:  # a multi-label model's answer
        result["labels"] = list(p.selected)
    return result | {
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


Scoring = Callable[[Sequence[str], Prediction], list[dict[str, Any]]]


def _scoring(request: PredictRequest) -> Scoring:
    """How /predict scores one prediction: Hugging Face's `function_to_apply` when given, else TEI's
    `raw_scores` (the logits) or the model's own scores; every label, or the `top_k`, by descending score."""
    parameters = request.parameters or PredictParameters()
    function = parameters.function_to_apply or ("none" if request.raw_scores else None)
    score = None if function is None else SCORE_FUNCTIONS[function]
    top_k = parameters.top_k

    def label_scores(labels: Sequence[str], p: Prediction) -> list[dict[str, Any]]:
        values = p.scores if score is None else score(p.logits)
        order = sorted(range(len(values)), key=values.__getitem__, reverse=True)[:top_k]
        return [{"label": labels[i], "score": values[i]} for i in order]

    return label_scores
