"""ASGI middleware that times every request and counts requests in flight."""

from __future__ import annotations

import time

from service.guards import ASGIApp, Message, Receive, Scope, Send
from service.metrics import Metrics


class RequestMetrics:
    """Records request latency by route template and status class, and the in-flight gauge."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.in_flight.dec()
            # The route template, never the raw path: unknown paths must not create label values.
            route = scope.get("route")
            self.metrics.request_duration.labels(
                route=getattr(route, "path", "other"), status_class=f"{status // 100}xx"
            ).observe(time.perf_counter() - start)
