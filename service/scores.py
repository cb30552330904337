"""Score functions over one text's logits, by the names Hugging Face gives them
(`function_to_apply`): a model's own answers use one, `/predict` may ask for another."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Scores = tuple[float, ...]


def softmax(logits: Sequence[float]) -> Scores:
    """Probabilities of labels that exclude each other (they sum to 1)."""
    top = max(logits)  # shifted, so exp never overflows
    exp = [math.exp(x - top) for x in logits]
    total = sum(exp)
    return tuple(e / total for e in exp)


def sigmoid(logits: Sequence[float]) -> Scores:
    """One probability per label, each on its own (multi-label models)."""
    return tuple(1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x)) for x in logits)


def unchanged(logits: Sequence[float]) -> Scores:
    """The logits as they are ("none")."""
    return tuple(logits)


SCORE_FUNCTIONS: dict[str, Callable[[Sequence[float]], Scores]] = {
    "softmax": softmax,
    "sigmoid": sigmoid,
    "none": unchanged,
}
