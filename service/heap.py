"""A process's start-up heap: what it dropped given back, the rest frozen before it serves."""

from __future__ import annotations

import ctypes
import gc


def freeze_start_up_heap() -> int:
    """Collect once, then keep every object alive now out of later collections; how many were kept.

    What a process builds while starting (modules, the app, the model's wrappers) lives as long as
    it does, yet each full collection walks all of it: measured in the front under load, a 20-30 ms
    pause every few minutes, every request in flight held behind it (docs/service.md).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def release_free_memory() -> bool:
    """Collect, then hand the C heap's free pages back to the kernel (glibc's malloc_trim); whether
    it could. glibc keeps freed memory for reuse, so what a process loaded and dropped at start-up
    (a model worker's other graphs) would stay in its private memory for good."""
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except AttributeError:
        return False  # another C library (musl): nothing to ask
    return bool(trim(0))
