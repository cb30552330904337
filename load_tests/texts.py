"""Request texts: the model's held-out test split, mixed to a chosen cache-hit ratio."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from models.layout import work_folder
from service.artifact import DEFAULT_MODEL_DIR

DEFAULT_TEXTS = work_folder(DEFAULT_MODEL_DIR) / "data" / "test.jsonl"


def held_out_texts(path: Path = DEFAULT_TEXTS) -> list[str]:
    """The texts of a split written by `models.data` (one JSON object with "text" per line)."""
    if not path.is_file():
        raise SystemExit(f"{path} not found: build the model first (make model), or pass --texts")
    # split("\n"), not splitlines(): texts may hold U+2028 and other characters splitlines() breaks on.
    lines = path.read_text(encoding="utf-8").split("\n")
    texts = [json.loads(line)["text"] for line in lines if line]
    return [t for t in texts if t.strip()]


def fresh_texts(texts: Sequence[str]) -> Iterator[str]:
    """The texts once as they are, then again and again with a round marker so each is new.

    The marker adds about three tokens; it only appears when a run needs more unique texts than
    the split holds.
    """
    round_ = 0
    while True:
        for text in texts:
            yield text if round_ == 0 else f"{text} #{round_}"
        round_ += 1


@dataclass(frozen=True)
class TextMix:
    """A run's texts: `hot` ones repeat (cache hits once a worker has seen them), the rest are new."""

    hot: tuple[str, ...]
    sequence: tuple[str, ...]

    @property
    def hit_ratio(self) -> float:
        """The share of `sequence` drawn from the hot set."""
        hot = set(self.hot)
        return sum(t in hot for t in self.sequence) / len(self.sequence) if self.sequence else 0.0


def mix(texts: Sequence[str], n: int, hit_ratio: float, hot_size: int = 64, seed: int = 0) -> TextMix:
    """`n` texts of which exactly round(n * hit_ratio) come from a hot set, spread evenly."""
    if not 0.0 <= hit_ratio <= 1.0:
        raise ValueError(f"hit ratio must be within 0..1, got {hit_ratio}")
    rng = random.Random(seed)
    pool = list(texts)
    if len(pool) <= hot_size:
        raise ValueError(f"{len(pool)} texts leave none outside a hot set of {hot_size}")
    rng.shuffle(pool)
    hot = tuple(pool[:hot_size]) if hit_ratio > 0 else ()
    fresh = fresh_texts(pool[len(hot) :])
    sequence = []
    for i in range(n):
        # Evenly spaced, so any window of the run has the requested ratio.
        is_hot = int((i + 1) * hit_ratio) > int(i * hit_ratio)
        sequence.append(rng.choice(hot) if is_hot else next(fresh))
    return TextMix(hot, tuple(sequence))
