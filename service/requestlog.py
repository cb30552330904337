"""ASGI middleware that gives every request an id (echoed in X-Request-ID) and writes access lines."""

from __future__ import annotations

import logging
import os
import re
import time

from service.guards import ASGIApp, Message, Receive, Scope, Send
from service.logs import REQUEST_ID

access = logging.getLogger("service.access")
# A caller's id is kept only if it cannot forge log lines or bloat them.
VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestLog:
    """Takes the caller's X-Request-ID (or makes one), returns it, and logs one line per request.

    The line holds method, route template, status, duration and request id, never the body or
    the query string: texts sent for classification can be personal data.
    """

    def __init__(self, app: ASGIApp, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = given.decode() if VALID_ID.fullmatch(given) else os.urandom(16).hex()
        token = REQUEST_ID.set(request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log:
                route = scope.get("route")
                access.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": getattr(route, "path", "other"),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - start) * 1e3, 3),
                    },
                )
            REQUEST_ID.reset(token)
