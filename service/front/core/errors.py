"""One error taxonomy, one table from kind to HTTP status, one JSON shape: {"error", "error_type"}.

No web framework here: the pool and the classify path raise these too (FastAPI's handlers that
answer them are service.front.api.error_responses)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from service.front.asgi import Send


class ErrorType(StrEnum):
    INVALID_JSON = "invalid_json"
    VALIDATION = "validation_error"
    INVALID_TENSOR = "invalid_tensor"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    TOO_MANY_TOKENS = "too_many_tokens"
    TOO_MANY_TEXTS = "too_many_texts"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNAUTHORIZED = "unauthorized"
    REQUEST_TIMEOUT = "request_timeout"
    URI_TOO_LONG = "uri_too_long"
    HEADERS_TOO_LARGE = "headers_too_large"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_READY = "not_ready"
    OVERLOADED = "overloaded"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    QUEUE_TIMEOUT = "queue_timeout"
    MODEL_WORKER_LOST = "model_worker_lost"
    MODEL_TIMEOUT = "model_timeout"
    MODEL_UNAVAILABLE = "model_unavailable"
    CLIENT_CLOSED_REQUEST = "client_closed_request"
    INTERNAL = "internal_error"


STATUS = {
    ErrorType.INVALID_JSON: 400,
    ErrorType.VALIDATION: 422,
    ErrorType.INVALID_TENSOR: 400,
    ErrorType.EMPTY_TEXT: 422,
    ErrorType.TEXT_TOO_LONG: 422,
    ErrorType.TOO_MANY_TOKENS: 413,  # text-embeddings-inference's status for it
    ErrorType.TOO_MANY_TEXTS: 422,
    ErrorType.PAYLOAD_TOO_LARGE: 413,
    ErrorType.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorType.UNAUTHORIZED: 401,
    ErrorType.REQUEST_TIMEOUT: 408,
    ErrorType.URI_TOO_LONG: 414,
    ErrorType.HEADERS_TOO_LARGE: 431,
    ErrorType.NOT_FOUND: 404,
    ErrorType.METHOD_NOT_ALLOWED: 405,
    ErrorType.NOT_READY: 503,
    ErrorType.OVERLOADED: 429,
    ErrorType.TOO_MANY_CONNECTIONS: 503,
    ErrorType.QUEUE_TIMEOUT: 503,
    ErrorType.MODEL_WORKER_LOST: 503,
    ErrorType.MODEL_TIMEOUT: 503,
    ErrorType.MODEL_UNAVAILABLE: 503,
    ErrorType.CLIENT_CLOSED_REQUEST: 499,
    ErrorType.INTERNAL: 500,
}
# Seconds a client should wait before retrying; a worker's queue turns over in well under one.
RETRY_AFTER = {
    ErrorType.OVERLOADED: "1",
    ErrorType.TOO_MANY_CONNECTIONS: "1",
    ErrorType.QUEUE_TIMEOUT: "1",
    ErrorType.MODEL_WORKER_LOST: "1",
    ErrorType.MODEL_TIMEOUT: "1",
    ErrorType.NOT_READY: "5",
}


class ServiceError(Exception):
    """A client-facing error; the message is safe to return."""

    def __init__(self, error_type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def queue_timeout(waited: float) -> ServiceError:
    """The error for a miss that waited too long for the model; computing it would only delay the rest."""
    return ServiceError(ErrorType.QUEUE_TIMEOUT, f"waited {waited:.3f} s for the model; retry later")


def error_body(error_type: ErrorType, message: str) -> bytes:
    """The JSON body of every error response, whichever layer answers it."""
    body = {"error": message, "error_type": error_type.value}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# On every error response: its kind, counted in textclf_errors_total by service.front.edge.edge.
ERROR_TYPE_HEADER = "x-error-type"


def error_headers(error_type: ErrorType) -> dict[str, str]:
    """The headers of every error response: its kind and Retry-After if transient."""
    retry = {"retry-after": RETRY_AFTER[error_type]} if error_type in RETRY_AFTER else {}
    return {ERROR_TYPE_HEADER: error_type.value, **retry}


def encode_error(
    error_type: ErrorType, message: str, close: bool = False, headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The raw headers and body of an error response, for the layers below the framework."""
    payload = error_body(error_type, message)
    all_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((name.encode(), value.encode()) for name, value in error_headers(error_type).items()),
        *headers,
    ]
    if close:
        all_headers.append((b"connection", b"close"))
    return all_headers, payload


async def send_error(
    send: Send,
    error_type: ErrorType,
    message: str,
    close: bool = False,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """An error response straight from ASGI code (the edge, the connection protocol)."""
    all_headers, payload = encode_error(error_type, message, close, headers)
    await send({"type": "http.response.start", "status": STATUS[error_type], "headers": all_headers})
    await send({"type": "http.response.body", "body": payload})


def describe_validation(errors: Sequence[Mapping[str, Any]]) -> str:
    """One line naming the first few fields that failed validation and why."""
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg')}")
    return "; ".join(parts)
