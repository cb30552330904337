"""Request and response bodies of the HTTP API (they also make the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, RootModel

from service.front.core.classify import VISIBLE


def text_schema(max_chars: int) -> dict[str, Any]:
    """JSON Schema of one accepted text, with the service's configured length limit."""
    return {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": VISIBLE.pattern}


class ClassifyRequest(BaseModel):
    # An unknown field is most often a typo or the other route's shape ("texts"): say so.
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the text to classify", examples=["I love it"])


class BatchClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(description="texts to classify, each processed on its own (unpadded)")


class ModelRef(BaseModel):
    name: str
    version: str


class Classification(BaseModel):
    label: str = Field(description="most probable label")
    score: float = Field(description="probability of `label`")
    labels: list[str] | None = Field(
        None,
        description="multi-label models only: every label whose probability is at or above its "
        "threshold (chosen on validation), maybe none",
    )
    scores: dict[str, float] = Field(
        description="probability of every label (a softmax; a multi-label model's: a sigmoid each)"
    )
    tokens: int = Field(description="tokens fed to the model, special tokens included")
    truncated: bool = Field(description="true when the text was cut at the model's maximum length")
    cached: bool = Field(description="true when served from the result cache")
    model: ModelRef


class BatchClassification(BaseModel):
    results: list[Classification]


class ErrorBody(BaseModel):
    error: str
    error_type: str


class Health(BaseModel):
    status: str


def _integral(value: Any) -> Any:
    """As JSON Schema reads an integer: 3.0 is one."""
    return int(value) if type(value) is float and value.is_integer() else value


class PredictParameters(BaseModel):
    """Hugging Face's text-classification parameters, as `InferenceClient.text_classification` sends them."""

    model_config = ConfigDict(extra="ignore", strict=True)

    top_k: Annotated[int, Field(ge=1), BeforeValidator(_integral)] | None = Field(
        None, description="only the k labels of highest score"
    )
    function_to_apply: Literal["softmax", "sigmoid", "none"] | None = Field(
        None,
        description='the function from logits to scores (before `raw_scores`, which is "none"); '
        "the model's own by default",
    )


class PredictRequest(BaseModel):
    """The body of text-embeddings-inference's `POST /predict`, so its clients work unchanged, and
    of Hugging Face's text-classification task (`parameters`), so `InferenceClient` does."""

    # As TEI: a field it does not know is ignored (clients send more than TEI reads). Strict: a
    # known field of the wrong type (`"raw_scores": 0`) is a client's mistake, not a false.
    model_config = ConfigDict(extra="ignore", strict=True)

    inputs: str | list[str] | list[list[str]] = Field(
        description='one text, or a batch: ["a", "b"] or TEI\'s [["a"], ["b"]] (pairs are refused: the '
        "model classifies single texts)",
        examples=["I love it"],
    )
    truncate: bool = Field(
        False, description="cut texts longer than the model's tokens; false answers 413 for them, as TEI does"
    )
    raw_scores: bool = Field(False, description="logits instead of probabilities")
    truncation_direction: Literal["Right", "right"] = Field(
        "Right", description="only right truncation (the model was trained on the start of texts)"
    )
    parameters: PredictParameters | None = Field(
        None,
        description="Hugging Face's task parameters; when present, the answer holds one list per input "
        "even for one text, as Hugging Face's clients read it",
    )


class LabelScore(BaseModel):
    label: str
    score: float


class Predictions(RootModel[list[LabelScore] | list[list[LabelScore]]]):
    """Every label (or the `top_k`) by descending score; a list of those for a batch, or for any
    request with `parameters`."""


class Empty(BaseModel):
    """No fields: the status says it all (the Open Inference Protocol's health answers)."""


class ServerMetadata(BaseModel):
    """The Open Inference Protocol's server metadata."""

    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """The Open Inference Protocol's model metadata."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
