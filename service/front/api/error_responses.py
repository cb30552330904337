"""The service's errors as FastAPI answers them: its exception handlers, in the one error shape
(service.front.core.errors), for the routes FastAPI serves."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.front.core.errors import (
    STATUS,
    ErrorType,
    ServiceError,
    describe_validation,
    error_body,
    error_headers,
)

_FROM_STATUS = {404: ErrorType.NOT_FOUND, 405: ErrorType.METHOD_NOT_ALLOWED}


def error_response(error_type: ErrorType, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The same error as a framework response, for FastAPI's exception handlers."""
    return Response(
        error_body(error_type, message),
        status_code=STATUS[error_type],
        headers=error_headers(error_type) | dict(headers or {}),
        media_type="application/json",
    )


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(exc.error_type, exc.message)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(ErrorType.INVALID_JSON, "request body is not valid JSON")
    return error_response(ErrorType.VALIDATION, describe_validation(errors))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kind = _FROM_STATUS.get(exc.status_code, ErrorType.VALIDATION)
    response = error_response(kind, str(exc.detail), exc.headers)
    response.status_code = exc.status_code
    return response


def install(app: FastAPI) -> None:
    """Register the handlers so every error FastAPI answers leaves as {"error", "error_type"}."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Any other exception: the edge (service.front.edge.edge), outside FastAPI, answers it.
