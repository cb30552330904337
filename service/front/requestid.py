"""ASGI middleware that gives every request an id: the caller's X-Request-ID, or a new one."""

from __future__ import annotations

import os
import re

from service.front.asgi import ASGIApp, Message, Receive, Scope, Send
from service.logs import REQUEST_ID

# A caller's id is kept only if it cannot forge log lines or bloat them.
VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestId:
    """Sets the request id for every log line written while the request is served, and returns it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = given.decode() if VALID_ID.fullmatch(given) else os.urandom(16).hex()
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
