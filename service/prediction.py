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

from service.scores import softmax


@dataclass(frozen=True, slots=True)
class Prediction:
    """One text's result; immutable, so a cached one can be shared between requests."""

    label: str
    score: float
    scores: tuple[float, ...]  # probabilities, in the artifact's label order
    logits: tuple[float, ...]  # the model's raw outputs, same order
    tokens: int
    truncated: bool

    @classmethod
    def from_logits(
        cls, labels: Sequence[str], logits: Sequence[float], tokens: int, truncated: bool
    ) -> Prediction:
        """Softmax over the logits and the most probable label; ValueError for a NaN or infinite logit
        (a broken model: no answer is better than one that is not JSON)."""
        if not all(map(math.isfinite, logits)):
            raise ValueError(f"the model returned non-finite logits {tuple(logits)}")
        return cls.from_scores(labels, softmax(logits), tuple(logits), tokens, truncated)

    @classmethod
    def from_scores(
        cls,
        labels: Sequence[str],
        scores: tuple[float, ...],
        logits: tuple[float, ...],
        tokens: int,
        truncated: bool,
    ) -> Prediction:
        """The prediction for probabilities already taken (by the model worker that sent them)."""
        best = max(range(len(scores)), key=scores.__getitem__)
        return cls(labels[best], scores[best], scores, logits, tokens, truncated)


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds spent in each stage of one computed prediction; queue is filled in by the caller."""

    tokenize: float
    inference: float
    queue: float = 0.0
