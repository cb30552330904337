"""Every request's latency by route and status class, and its access line."""

from __future__ import annotations

import logging

from service.front.telemetry.metric_buffers import HistogramBuffer
from service.front.telemetry.metrics import Metrics

access = logging.getLogger("service.access")


class RequestMetrics:
    """Records request latency by route label and status class, and error responses by kind.

    With `access_log`, one log line per request: method, route, status, duration (and the request
    id, from the log context), never the body or the query string: texts sent for classification
    can be personal data."""

    def __init__(self, metrics: Metrics, access_log: bool = False) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self._durations: dict[tuple[str, int], HistogramBuffer] = {}

    def record(self, method: str, route: str, status: int, seconds: float, error_type: bytes | None) -> None:
        """One request answered (or dropped) after `seconds`; an error response counted by its kind."""
        if error_type is not None:
            self.metrics.error(error_type.decode())
        duration = self._durations.get((route, status))
        if duration is None:
            duration = self.metrics.histogram(
                self.metrics.request_duration, route=route, status_class=f"{status // 100}xx"
            )
            self._durations[route, status] = duration
        duration.observe(seconds)
        if self.access_log:
            access.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1e3, 3),
                },
            )
