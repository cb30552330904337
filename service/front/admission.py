"""ASGI middleware that bounds the API requests one HTTP process holds, answering the rest 429 at once."""

from __future__ import annotations

from service.front.api_paths import is_api
from service.front.asgi import ASGIApp, Receive, Scope, Send
from service.front.errors import ErrorType, send_error
from service.front.metrics import Metrics


class AdmissionControl:
    """Admits at most `max_in_flight` API requests per HTTP process; past it, 429 with Retry-After.

    Without a bound, a burst queues without limit for the model: every request
    behind it waits longer, memory grows, and clients time out on answers still computed. A fast
    rejection lets the client retry elsewhere (the next pod, or after Retry-After). Probes and
    scrapes are never rejected: a busy pod is not a dead one.
    """

    def __init__(self, app: ASGIApp, max_in_flight: int, metrics: Metrics) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # what textclf_in_flight_requests reports
        metrics.on_publish(lambda: metrics.in_flight.set(self.in_flight))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await send_error(
                send, ErrorType.OVERLOADED, "too many requests in flight on this server process; retry later"
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
