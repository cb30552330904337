"""An in-process `service.front.telemetry.metrics.Metrics` read as a scrape reads it."""

from __future__ import annotations

from service.front.telemetry.metrics import Metrics


def published(metrics: Metrics, name: str, **labels: str) -> float:
    """One sample's value after a publish (the buffered counts and sampled gauges written, as a
    scrape does first); AssertionError if the series does not exist."""
    metrics.publish()
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, f"no sample {name}{labels}"
    return value
