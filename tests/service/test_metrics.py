from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import LATENCY_BUCKETS, Metrics, geometric_buckets


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
