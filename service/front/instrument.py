"""ASGI middleware that times every request, counts error responses and writes access lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from service.front.api_paths import is_probe, route_template
from service.front.asgi import ASGIApp, Message, Receive, Scope, Send
from service.front.errors import ERROR_TYPE_HEADER
from service.front.metric_buffers import HistogramBuffer
from service.front.metrics import Metrics

ERROR_TYPE = ERROR_TYPE_HEADER.encode()

access = logging.getLogger("service.access")


class RequestMetrics:
    """Records request latency by route template (from `routes`) and status class, and every error
    response by the kind its header names (whichever layer answered it).

    With `access_log`, also one log line per request: method, route template, status, duration
    (and the request id, from service.front.requestid), never the body or the query string: texts sent
    for classification can be personal data.
    """

    def __init__(
        self, app: ASGIApp, metrics: Metrics, routes: Collection[str] = (), access_log: bool = False
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)
        self.access_log = access_log
        self._durations: dict[tuple[str, str], HistogramBuffer] = {}

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
                # Every layer's error response names its kind in a header. A probe route's 503 is
                # its verdict for Kubernetes, not an error served (a refusal before routing is).
                if status >= 400 and not is_probe(getattr(scope.get("route"), "path", "")):
                    kind = next((v for k, v in message["headers"] if k == ERROR_TYPE), b"unknown")
                    self.metrics.error(kind.decode())
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope, self.routes)
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
