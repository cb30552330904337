"""The result of classifying one text, as both processes see it: a model worker computes it,
the wire (service.protocol) carries it, the front caches and answers it. No model runtime here.

One result, one type, `Prediction`, from the worker to the response; what travels with it is
named for what it adds: the wire's `Reply` (which job; the worker's busy time), the front's
`Outcome` (from the cache or not; the stage times), and `Classification`, its JSON in the API.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.scores import sigmoid, softmax


@dataclass(frozen=True, slots=True)
class Prediction:
    """One text's result; immutable, so a cached one can be shared between requests."""

    label: str
    score: float
    scores: tuple[float, ...]  # probabilities (softmax or per-label sigmoid), in the artifact's label order
    logits: tuple[float, ...]  # the model's raw outputs, same order
    tokens: int
    truncated: bool
    # A multi-label model's answer: every label whose score is at or above its threshold, maybe
    # none (`label` is still the top one). None for a single-label model.
    selected: tuple[str, ...] | None = None

    @classmethod
    def from_logits(
        cls,
        labels: Sequence[str],
        logits: Sequence[float],
        tokens: int,
        truncated: bool,
        thresholds: Sequence[float] | None = None,
    ) -> Prediction:
        """Scores from the logits (a softmax, or with `thresholds` a sigmoid per label) and the top
        label; ValueError for a NaN or infinite logit (a broken model: no answer beats one that is not
        JSON)."""
        if not all(map(math.isfinite, logits)):
            raise ValueError(f"the model returned non-finite logits {tuple(logits)}")
        scores = softmax(logits) if thresholds is None else sigmoid(logits)
        return cls.from_scores(labels, scores, tuple(logits), tokens, truncated, thresholds)

    @classmethod
    def from_scores(
        cls,
        labels: Sequence[str],
        scores: tuple[float, ...],
        logits: tuple[float, ...],
        tokens: int,
        truncated: bool,
        thresholds: Sequence[float] | None = None,
    ) -> Prediction:
        """The prediction for scores already taken (by the model worker that sent them)."""
        best = max(range(len(scores)), key=scores.__getitem__)
        selected = (
            None
            if thresholds is None
            else tuple(label for label, s, t in zip(labels, scores, thresholds, strict=True) if s >= t)
        )
        return cls(labels[best], scores[best], scores, logits, tokens, truncated, selected)


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds spent in each stage of one computed prediction; queue is filled in by the caller."""

    tokenize: float
    inference: float
    queue: float = 0.0
