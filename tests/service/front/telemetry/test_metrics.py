from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.front.telemetry.metrics import LATENCY_BUCKETS, Metrics, geometric_buckets


def test_latency_buckets_resolve_sub_millisecond_to_a_second() -> None:
    assert LATENCY_BUCKETS[0] <= 0.0005 and LATENCY_BUCKETS[-1] >= 1.0
    ratios = [b / a for a, b in zip(LATENCY_BUCKETS, LATENCY_BUCKETS[1:], strict=False)]
    assert ratios == pytest.approx([1.5] * len(ratios), rel=1e-4)
    # At least 5 buckets between 1 ms and 10 ms, where the service's p99 lives.
    assert sum(0.001 <= b <= 0.01 for b in LATENCY_BUCKETS) >= 5
    assert geometric_buckets(1, 2, 10) == (1, 2, 4, 8)


def test_metrics_use_base_units_a_common_prefix_and_their_own_registry() -> None:
    metrics = Metrics(None)
    metrics.request_duration.labels(route="/v1/classify", status_class="2xx").observe(0.003)
    metrics.cache_lookups.labels(result="hit").inc()
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    assert all(name.startswith("textclf_") for name in families)
    assert "textclf_request_duration_seconds" in families
    assert families["textclf_cache_lookups"].type == "counter"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for s in families["textclf_cache_lookups"].samples
    }
    assert samples[("textclf_cache_lookups_total", (("result", "hit"),))] == 1.0
    # A second instance shares nothing with the first (no global registry).
    assert "textclf_cache_lookups_total{" not in Metrics(None).render().decode()


def test_buffered_series_render_as_direct_updates_once_published() -> None:
    direct, buffered = Metrics(None), Metrics(None)
    # On bucket bounds, between them, below the first and past the last.
    values = [LATENCY_BUCKETS[0], LATENCY_BUCKETS[3], 0.00123, 0.0, 7.5, LATENCY_BUCKETS[-1], 0.00123]
    histogram = buffered.histogram(buffered.stage_duration, stage="queue")
    counter = buffered.counter(buffered.cache_lookups, result="hit")
    for v in values:
        direct.stage_duration.labels(stage="queue").observe(v)
        direct.cache_lookups.labels(result="hit").inc(2)
        histogram.observe(v)
        counter.inc(2)

    def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(metrics.render().decode())
            for s in f.samples
            if not s.name.endswith("_created")
        }

    assert buffered.registry.get_sample_value("textclf_cache_lookups_total", {"result": "hit"}) == 0
    published = samples(buffered)  # render() publishes first
    assert published == samples(direct)
    assert published[("textclf_cache_lookups_total", (("result", "hit"),))] == 14
    # Published once: a second scrape adds nothing.
    assert samples(buffered) == published
