"""A bounded soak: unique texts through the real service keep resident memory flat once the
result cache is full, because the cache is bounded by bytes."""

from __future__ import annotations

from pathlib import Path

from load_tests.memory import MIB, measure
from models.data import read_split
from tests.conftest import Built

CACHE_BYTES = 256 * 1024


def test_memory_stays_flat_once_the_cache_is_full(small_model: Built, tmp_path: Path) -> None:
    # Long texts (8,000 characters): without the byte bound, the last half of the run alone would add
    # several MiB of cache entries; the small model truncates them, so inference stays cheap.
    texts = [" ".join([e.text] * 60)[:8000] for e in read_split(small_model.work / "data", "test")]
    # A count, not a duration, ends the run: on a slower machine it takes longer, and means the same.
    report = measure(
        small_model.artifact, texts, workers=1, cache_max_bytes=CACHE_BYTES, duration=600, requests=2000
    )
    assert report["passed"] and report["requests"] == 2000, report
    cache = report["cache"]
    assert cache["evictions"] > 0 and 0 < cache["bytes_accounted"] <= CACHE_BYTES
    # Every text was new, so an unbounded cache would have grown by at least this much per half.
    unbounded_half_mib = report["requests"] / 2 * 8000 / MIB
    assert unbounded_half_mib > 4, report  # the run is long enough for the check to mean something
    # One front (the launcher's own process) and its one model worker: each stays flat.
    for process, rss in report["rss"].items():
        assert rss["last_half_growth_mib"] < 1.5, (process, report)
