"""ASGI middleware that times every request and counts API requests in flight."""

from __future__ import annotations

import time

from service.guards import ASGIApp, Message, Receive, Scope, Send
from service.metrics import Metrics

# Only API work counts as in flight: probes and scrapes are not load, and a scrape would count itself.
API_PREFIX = "/v1/"


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

        api = scope["path"].startswith(API_PREFIX)
        if api:
            self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            if api:
                self.metrics.in_flight.dec()
            # The route template, never the raw path: unknown paths must not create label values.
            route = scope.get("route")
            self.metrics.request_duration.labels(
                route=getattr(route, "path", "other"), status_class=f"{status // 100}xx"
            ).observe(time.perf_counter() - start)
