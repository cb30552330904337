"""Request and response bodies of the HTTP API (they also make the OpenAPI schema)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    scores: dict[str, float] = Field(description="probability of every label")
    tokens: int = Field(description="tokens fed to the model, special tokens included")
    truncated: bool = Field(description="true when the text was cut at the model's maximum length")
    cached: bool = Field(description="true when served from this worker's result cache")
    model: ModelRef


class BatchClassification(BaseModel):
    results: list[Classification]


class ErrorBody(BaseModel):
    error: str
    error_type: str


class Health(BaseModel):
    status: str
