from __future__ import annotations

import gc
import tracemalloc

from service.front.core.result_cache import ENTRY_OVERHEAD_BYTES, ResultCache, entry_size
from service.prediction import Prediction


def pred(label: str = "positive") -> Prediction:
    return Prediction(label, 0.9, (0.05, 0.05, 0.9), (-1.0, -1.0, 1.9), tokens=4, truncated=False)


def test_hit_returns_the_same_prediction_and_miss_returns_none() -> None:
    cache = ResultCache(10, 1 << 20)
    p = pred()
    cache.put(("v1", "hello"), p)
    assert cache.get(("v1", "hello")) is p
    assert cache.get(("v1", "other")) is None
    assert cache.get(("v2", "hello")) is None  # another model version never sees it


def test_entry_bound_evicts_least_recently_used() -> None:
    evicted: list[None] = []
    cache = ResultCache(2, 1 << 20, on_evict=lambda: evicted.append(None))
    cache.put(("v", "a"), pred())
    cache.put(("v", "b"), pred())
    cache.get(("v", "a"))  # a is now the most recently used
    cache.put(("v", "c"), pred())
    assert cache.get(("v", "b")) is None
    assert cache.get(("v", "a")) is not None and cache.get(("v", "c")) is not None
    assert len(cache) == 2 and len(evicted) == 1


def test_byte_bound_holds_after_every_insert() -> None:
    budget = 10 * entry_size("x" * 100)
    evicted: list[None] = []
    cache = ResultCache(1_000_000, budget, on_evict=lambda: evicted.append(None))
    for i in range(200):
        cache.put(("v", f"{i:03d}" + "x" * 97), pred())
        assert cache.bytes <= budget
    assert len(cache) == 10 and len(evicted) == 190


def test_text_bigger_than_the_budget_is_not_cached() -> None:
    cache = ResultCache(10, 2000)
    cache.put(("v", "y" * 5000), pred())
    assert len(cache) == 0


def test_size_zero_disables_the_cache() -> None:
    cache = ResultCache(0, 1 << 20)
    cache.put(("v", "a"), pred())
    assert cache.get(("v", "a")) is None and len(cache) == 0 and not cache.enabled


def test_ttl_expires_entries() -> None:
    now = [100.0]
    cache = ResultCache(10, 1 << 20, ttl_seconds=5, timer=lambda: now[0])
    cache.put(("v", "a"), pred())
    now[0] += 4
    assert cache.get(("v", "a")) is not None
    now[0] += 2
    assert cache.get(("v", "a")) is None


def test_entry_overhead_estimate_covers_real_allocations() -> None:
    cache = ResultCache(100_000, 1 << 30)
    texts = [f"some tweet-sized text number {i} with a few more words" for i in range(5000)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for t in texts:
        cache.put(("v", t), Prediction("neutral", 0.5, (0.2, 0.5, 0.3), (0.1, 1.0, 0.5), 12, False))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # The texts themselves already existed; the estimate must still cover what the cache added.
    assert used / len(texts) <= ENTRY_OVERHEAD_BYTES
    assert cache.bytes >= used
