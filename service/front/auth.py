"""ASGI middleware for optional bearer-token auth, checked before anything else reads the request."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from service.front.api_paths import is_api, is_probe
from service.front.asgi import ASGIApp, Receive, Scope, Send
from service.front.errors import ErrorType, send_error
from service.tokens import TOKENS_FILE_FORMAT, read_tokens_file

CHALLENGE = [(b"www-authenticate", b'Bearer realm="textclf"')]


def protected_paths(open_health: bool, open_metrics: bool) -> Callable[[str], bool]:
    """Which paths need a token: the API always; health and metrics unless left open."""

    def protected(path: str) -> bool:
        if is_probe(path):
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


log = logging.getLogger(__name__)


class Tokens:
    """The accepted tokens' SHA-256 digests: the fixed ones, and the tokens file's, read again when
    it changes.

    A mounted Kubernetes Secret is updated in place (a symlink swap): its new tokens must work,
    and revoked ones stop working, without a restart. The file's identity (inode, mtime, size)
    is checked at most every `check_every` seconds, so requests pay one stat a second, not each.
    Auth fails closed: a file that is empty, missing or unreadable contributes no token, so an
    empty Secret that a sidecar fills later refuses every request until it holds one. A line that
    is no fit token (service.tokens.TOKENS_FILE_FORMAT), refused at start-up, is skipped at a
    re-read and logged without its value: the file's other tokens keep working.
    """

    def __init__(self, fixed: Sequence[str], file: Path | None, check_every: float = 1.0) -> None:
        self._fixed = self._digests(fixed)
        self._file = file
        self._check_every = check_every
        self._next_check = time.monotonic() + check_every
        self._identity = self._stat()
        self.digests = self._fixed + self._read_file()
        if not self.digests:
            log.warning("no bearer token configured yet: every protected request is refused (401)")

    @staticmethod
    def _digests(tokens: Iterable[str]) -> list[bytes]:
        return [hashlib.sha256(t.encode()).digest() for t in tokens]

    def _stat(self) -> tuple[int, int, int] | None:
        if self._file is None:
            return None
        try:
            st = os.stat(self._file)  # follows the Secret's symlinks to the current file
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _read_file(self) -> list[bytes]:
        if self._file is None:
            return []
        try:
            tokens, refused = read_tokens_file(self._file)
        except (OSError, UnicodeDecodeError) as err:
            log.warning(
                "tokens file %s could not be read (%s): none of its tokens is accepted", self._file, err
            )
            return []
        for problem in refused:
            log.warning("tokens file %s: that line is not accepted (%s)", problem, TOKENS_FILE_FORMAT)
        return self._digests(tokens)

    def current(self) -> list[bytes]:
        """The digests to check a request against, re-read first if the file changed."""
        if self._file is None or time.monotonic() < self._next_check:
            return self.digests
        self._next_check = time.monotonic() + self._check_every
        identity = self._stat()
        if identity == self._identity:
            return self.digests
        self._identity = identity
        self.digests = self._fixed + self._read_file()
        log.info("tokens file %s changed: %d tokens now accepted", self._file, len(self.digests))
        return self.digests


class BearerAuth:
    """401 unless `Authorization: Bearer <token>` carries one of the configured tokens.

    Tokens are compared as SHA-256 digests with hmac.compare_digest, against every configured
    token without stopping early, so the time taken says nothing about how close a guess was or
    which token matched. The answer is the same whether the header is missing, malformed or wrong.
    """

    def __init__(
        self,
        app: ASGIApp,
        tokens: Tokens,
        protected: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.protected = protected

    def _accepts(self, authorization: bytes) -> bool:
        scheme, _, token = authorization.partition(b" ")
        presented = hashlib.sha256(token.strip()).digest()
        matched = False
        for digest in self.tokens.current():
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
        await send_error(send, ErrorType.UNAUTHORIZED, "a valid bearer token is required", headers=CHALLENGE)
