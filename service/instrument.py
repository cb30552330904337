"""ASGI middleware that times every request, counts API requests in flight and writes access lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from service.guards import ASGIApp, Message, Receive, Scope, Send
from service.metric_buffers import HistogramBuffer
from service.metrics import Metrics

API_PREFIX = "/v1/"
# Routes outside /v1/ kept for other services' clients: text-embeddings-inference's /predict.
COMPATIBLE_ROUTES = frozenset({"/predict"})


def is_api(path: str) -> bool:
    """Classification work (authenticated, admitted, in flight), as opposed to probes and scrapes."""
    return path.startswith(API_PREFIX) or path in COMPATIBLE_ROUTES


access = logging.getLogger("service.access")


class RequestMetrics:
    """Records request latency by route template (from `routes`) and status class, and the in-flight gauge.

    With `access_log`, also one log line per request: method, route template, status, duration
    (and the request id, from service.requestid), never the body or the query string: texts sent
    for classification can be personal data.
    """

    def __init__(
        self, app: ASGIApp, metrics: Metrics, routes: Collection[str] = (), access_log: bool = False
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)
        self.access_log = access_log
        self.in_flight = 0
        self._durations: dict[tuple[str, str], HistogramBuffer] = {}
        metrics.on_publish(lambda: metrics.in_flight.set(self.in_flight))

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

        # Only API work counts as in flight: probes and scrapes are not load, and a scrape would count itself.
        api = is_api(scope["path"])
        self.in_flight += api
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.in_flight -= api
            elapsed = time.perf_counter() - start
            # The route template, never the raw path: unknown paths must not create label values. A
            # request refused in middleware (429, 413, 408...) never reached routing: its path is
            # one of `routes` (no path parameters), so it is counted under its route all the same.
            path = scope["path"]
            route = str(getattr(scope.get("route"), "path", path if path in self.routes else "other"))
            status_class = f"{status // 100}xx"
            duration = self._durations.get((route, status_class))
            if duration is None:
                duration = self.metrics.histogram(
                    self.metrics.request_duration, route=route, status_class=status_class
                )
                self._durations[route, status_class] = duration
            duration.observe(elapsed)
            if self.access_log:
                access.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1e3, 3),
                    },
                )
