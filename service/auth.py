"""ASGI middleware for optional bearer-token auth, checked before anything else reads the request."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI

from service.errors import ErrorType
from service.guards import ASGIApp, Receive, Scope, Send, send_error
from service.instrument import is_api

CHALLENGE = [(b"www-authenticate", b'Bearer realm="textclf"')]


def protected_paths(open_health: bool, open_metrics: bool) -> Callable[[str], bool]:
    """Which paths need a token: the API always; health and metrics unless left open."""

    def protected(path: str) -> bool:
        if path.startswith("/health/"):
            return not open_health
        if path == "/metrics":
            return not open_metrics
        return is_api(path)

    return protected


def document_bearer_auth(app: FastAPI, protected: Callable[[str], bool]) -> None:
    """Declare the bearer scheme in the app's OpenAPI schema, on exactly the operations that need it."""
    build = app.openapi

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
            if protected(path):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
                    operation["responses"]["401"] = refusal
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class BearerAuth:
    """401 unless `Authorization: Bearer <token>` carries one of the configured tokens.

    Tokens are compared as SHA-256 digests with hmac.compare_digest, against every configured
    token without stopping early, so the time taken says nothing about how close a guess was or
    which token matched. The answer is the same whether the header is missing, malformed or wrong.
    """

    def __init__(
        self,
        app: ASGIApp,
        tokens: Sequence[str],
        protected: Callable[[str], bool],
        on_reject: Callable[[ErrorType], None],
    ) -> None:
        if not tokens:
            raise ValueError("BearerAuth needs at least one token")
        self.app = app
        self.digests = [hashlib.sha256(t.encode()).digest() for t in tokens]
        self.protected = protected
        self.on_reject = on_reject

    def _accepts(self, authorization: bytes) -> bool:
        scheme, _, token = authorization.partition(b" ")
        presented = hashlib.sha256(token.strip()).digest()
        matched = False
        for digest in self.digests:
            matched |= hmac.compare_digest(presented, digest)
        return matched and scheme.lower() == b"bearer"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if self._accepts(authorization):
            await self.app(scope, receive, send)
            return
        self.on_reject(ErrorType.UNAUTHORIZED)
        await send_error(send, ErrorType.UNAUTHORIZED, "a valid bearer token is required", headers=CHALLENGE)
