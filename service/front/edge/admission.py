"""The bound on API requests one HTTP process holds: past it, 429 at once."""

from __future__ import annotations

from service.front.telemetry.metrics import Metrics


class Admission:
    """Admits at most `max_in_flight` API requests at a time (the edge counts them in and out).

    Without a bound, a burst queues without limit for the model: every request behind it waits
    longer, memory grows, and clients time out on answers still computed. A fast rejection lets
    the client retry elsewhere (the next pod, or after Retry-After). Probes and scrapes are never
    counted: a busy pod is not a dead one.
    """

    __slots__ = ("max_in_flight", "in_flight")

    def __init__(self, max_in_flight: int, metrics: Metrics) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # what textclf_in_flight_requests reports
        metrics.on_publish(lambda: metrics.in_flight.set(self.in_flight))

    @property
    def full(self) -> bool:
        """Whether one more request must be refused."""
        return self.in_flight >= self.max_in_flight
