"""Per-HTTP-process LRU result cache, bounded by entries and by bytes, with optional TTL."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import NamedTuple

from cachetools import LRUCache, TTLCache

from service.prediction import Prediction

# Per-entry cost beyond the key text: the Prediction and its tuple, the cache's key tuple and
# its LRU/TTL bookkeeping nodes: ~360 bytes measured with tracemalloc
# (tests/service/front/core/test_result_cache.py).
ENTRY_OVERHEAD_BYTES = 600

Key = tuple[str, str]  # (model version, normalized text)


class _Entry(NamedTuple):
    prediction: Prediction
    size: int


def entry_size(text: str) -> int:
    """Approximate bytes one cached entry for `text` holds."""
    return sys.getsizeof(text) + ENTRY_OVERHEAD_BYTES


class _EvictionHook:
    """Mixin: call `on_evict` whenever cachetools evicts an entry to respect its bound."""

    on_evict: Callable[[], None] = staticmethod(lambda: None)

    def popitem(self) -> tuple[Key, _Entry]:
        self.on_evict()
        return super().popitem()  # type: ignore[misc, no-any-return]


class _NotifyingLRU(_EvictionHook, LRUCache[Key, _Entry]):
    pass


class _NotifyingTTL(_EvictionHook, TTLCache[Key, _Entry]):
    pass


class ResultCache:
    """LRU of predictions keyed by (model version, text); both bounds hold after every insert."""

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        ttl_seconds: float = 0.0,
        timer: Callable[[], float] = time.monotonic,
        on_evict: Callable[[], None] = lambda: None,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # cachetools enforces the byte bound (maxsize measured by getsizeof, kept right through
        # eviction and expiry); the entry bound is enforced in put().
        budget = max(max_bytes, 1)
        self._lru: _NotifyingLRU | _NotifyingTTL = (
            _NotifyingTTL(budget, ttl_seconds, timer, getsizeof=lambda e: e.size)
            if ttl_seconds > 0
            else _NotifyingLRU(budget, getsizeof=lambda e: e.size)
        )
        # Called for entries dropped to respect a bound; expired entries are not evictions.
        self._lru.on_evict = on_evict

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    @property
    def bytes(self) -> int:
        """Approximate bytes held."""
        return int(self._lru.currsize)

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, key: Key) -> Prediction | None:
        """The cached prediction, refreshed as most recently used, or None."""
        if not self.enabled:
            return None
        entry = self._lru.get(key)
        return entry.prediction if entry is not None else None

    def put(self, key: Key, prediction: Prediction) -> None:
        """Insert as most recently used; a text larger than the whole byte budget is not cached."""
        if not self.enabled:
            return
        size = entry_size(key[1])
        if size > self.max_bytes:
            return
        self._lru[key] = _Entry(prediction, size)
        while len(self._lru) > self.max_entries:
            self._lru.popitem()
