"""ASGI middleware that answers an exception no handler took: one log line, one counted error."""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect

from service.front.asgi import ASGIApp, Message, Receive, Scope, Send
from service.front.errors import ErrorType, send_error

log = logging.getLogger("service.errors")


class UnhandledErrors:
    """A 500 `internal_error` for a bug, a 499 `client_closed_request` for a client that hung up.

    It sits inside service.front.requestid, so the log line and the response carry the request id.
    Starlette's own last resort sits outside every middleware: it logs without the id, answers
    without X-Request-ID, and re-raises, so uvicorn logs the traceback a second time. A client
    that closes its connection mid-body is not a server error and needs no traceback; its 499
    reaches nobody but the request metrics (nginx's code for it).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except ClientDisconnect:
            log.info("client closed the connection before its request was read")
            kind, message = ErrorType.CLIENT_CLOSED_REQUEST, "client closed the connection"
        except Exception:
            if started:
                raise  # half a response: only closing the connection (uvicorn's job) can end it
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            kind, message = ErrorType.INTERNAL, "internal server error"
        else:
            return
        if not started:
            await send_error(send, kind, message)
