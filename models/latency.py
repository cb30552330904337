"""Single-thread latency of ONNX models at fixed token counts, measured side by side."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from service.session import OnnxClassifierSession
from service.tokenizer import TextTokenizer


def inputs_of_length(tokenizer: TextTokenizer, texts: Sequence[str], n_tokens: int) -> npt.NDArray[np.int64]:
    """Real token ids, exactly `n_tokens` long with special tokens, cut from concatenated texts."""
    joined = " ".join(texts)
    ids = tokenizer.encode(joined).input_ids
    if ids.shape[1] < n_tokens:
        raise ValueError(f"texts give only {ids.shape[1]} tokens, {n_tokens} asked")
    # Keep [CLS] ... and the final [SEP]: the shape of a real n-token input.
    return np.concatenate([ids[:, : n_tokens - 1], ids[:, -1:]], axis=1)


def percentile_ms(samples: Sequence[float], q: float) -> float:
    """The q-th percentile of durations in seconds, in milliseconds."""
    return round(float(np.percentile(np.asarray(samples), q)) * 1e3, 3)


def measure(
    sessions: Mapping[str, OnnxClassifierSession],
    inputs: Mapping[int, npt.NDArray[np.int64]],
    runs: int,
    warmup: int = 20,
) -> dict[str, dict[str, dict[str, float]]]:
    """p50/p99 ms per model per length; models alternate run by run, so drift hits all alike."""
    table: dict[str, dict[str, dict[str, float]]] = {name: {} for name in sessions}
    for n_tokens, ids in inputs.items():
        samples: dict[str, list[float]] = {name: [] for name in sessions}
        for i in range(warmup + runs):
            for name, session in sessions.items():
                start = time.perf_counter()
                session.logits(ids)
                if i >= warmup:
                    samples[name].append(time.perf_counter() - start)
        for name, s in samples.items():
            table[name][str(n_tokens)] = {"p50_ms": percentile_ms(s, 50), "p99_ms": percentile_ms(s, 99)}
    return table
