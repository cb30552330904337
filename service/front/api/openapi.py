"""The OpenAPI document's entries for what FastAPI does not answer: the classify routes the edge
answers (their bodies, answers and docstrings) and the bearer scheme on the routes that need it."""

from __future__ import annotations

import inspect
from collections.abc import Collection, Mapping
from enum import Enum
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service.config import Settings
from service.front.api import open_inference
from service.front.api.schemas import (
    BatchClassification,
    BatchClassifyRequest,
    Classification,
    ClassifyRequest,
    ErrorBody,
    Predictions,
    PredictRequest,
    text_schema,
)
from service.front.edge.edge import Handler
from service.front.edge.route_table import Access, RouteTable

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 413, 415, 422, 503)}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 503: {"model": ErrorBody}}
V2: list[str | Enum] = ["open inference protocol"]


def json_body(model: type[BaseModel], limits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI request body of a classify route (it validates its own body).

    `limits` adds the checks done in code (configured lengths, visible text) to the fields'
    schemas, so clients and schema-based fuzzers see what the service accepts.
    """
    schema = model.model_json_schema()
    schema = _inlined(schema, schema.pop("$defs", {}))  # "#/$defs/..." means nothing in an OpenAPI document
    for name, extra in limits.items():
        schema["properties"][name] |= extra
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _inlined(schema: Any, defs: Mapping[str, Any]) -> Any:
    """`schema` with each reference to one of `defs` replaced by its definition."""
    if isinstance(schema, list):
        return [_inlined(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if set(schema) == {"$ref"}:
        return _inlined(defs[schema["$ref"].removeprefix("#/$defs/")], defs)
    return {key: _inlined(value, defs) for key, value in schema.items()}


def _no_parameters() -> None:
    """A classify route's parameters: none but its body (documented by json_body)."""


def _infer(model_name: str, request: open_inference.InferRequest) -> None:
    """The infer route's parameters: its model's name and its body."""


def _version_infer(model_name: str, model_version: str, request: open_inference.InferRequest) -> None:
    """The versioned infer route's parameters."""


def documented_routes(
    settings: Settings, table: RouteTable, handlers: Mapping[str, Handler]
) -> list[APIRoute]:
    """The hot routes as FastAPI would document them, for its OpenAPI document only: they are never
    routed (the edge answers them). Each is described by its handler's docstring."""
    text = text_schema(settings.max_text_chars)
    batch = {"texts": {"minItems": 1, "maxItems": settings.max_batch, "items": text}}
    listed = {"type": "array", "items": text, "minItems": 1, "maxItems": settings.max_batch}
    singles = {"type": "array", "items": {"type": "array", "items": text, "minItems": 1, "maxItems": 1}}
    inputs = {"inputs": {"anyOf": [text, listed, singles | {"minItems": 1, "maxItems": settings.max_batch}]}}
    classify: dict[str, Any] = {"responses": ERRORS, "tags": ["classify"]}
    infer: dict[str, Any] = {
        "responses": ERRORS | NOT_FOUND,
        "tags": V2,
        "response_model": open_inference.InferResponse,
    }
    documents: dict[str, dict[str, Any]] = {
        "classify": classify
        | {"response_model": Classification, "openapi_extra": json_body(ClassifyRequest, {"text": text})},
        "classify_batch": classify
        | {"response_model": BatchClassification, "openapi_extra": json_body(BatchClassifyRequest, batch)},
        "predict": classify
        | {"response_model": Predictions, "openapi_extra": json_body(PredictRequest, inputs)},
        "predict_at_root": classify
        | {
            "response_model": Predictions,
            "openapi_extra": json_body(PredictRequest, inputs),
            "description": "/predict, where text-embeddings-inference answers it for a classifier.",
        },
        "infer": infer | {"endpoint": _infer},
        "version_infer": infer
        | {"endpoint": _version_infer, "description": "Infer, naming the model's one version."},
    }
    routes = []
    for route in table.routes:
        if route.hot:
            document = {"endpoint": _no_parameters, "description": inspect.getdoc(handlers[route.name])}
            routes.append(
                APIRoute(
                    route.path, methods=[route.method], name=route.name, **(document | documents[route.name])
                )
            )
    return routes


def document_bearer_auth(app: FastAPI, table: RouteTable, protected: Collection[Access]) -> None:
    """Declare the bearer scheme in the app's OpenAPI schema, on exactly the operations that need it."""
    build = app.openapi
    access = {route.path: route.access for route in table.routes}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI caches it in app.openapi_schema: amended once, in place
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        refusal = {
            "description": "missing or invalid bearer token",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for path, operations in schema["paths"].items():
            if access.get(path) in protected:
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
                    operation["responses"]["401"] = refusal
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
