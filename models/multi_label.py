"""Judging a multi-label model: a decision threshold per label, chosen on validation, and F1 scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score

# Candidate thresholds: a coarse grid, so a few hundred validation texts do not overfit a label's.
GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))


def gold_matrix(label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """One 0/1 row per text, a column per label."""
    column = {label: i for i, label in enumerate(labels)}
    gold = np.zeros((len(label_sets), len(labels)), dtype=np.int8)
    for row, chosen in enumerate(label_sets):
        gold[row, [column[label] for label in chosen]] = 1
    return gold


def choose_thresholds(scores: np.ndarray, gold: np.ndarray) -> list[float]:
    """Per label, the grid threshold of best F1 on these (validation) scores; ties and labels never
    present keep the one nearest 0.5."""
    chosen = []
    for j in range(gold.shape[1]):
        by_f1 = {t: f1_score(gold[:, j], scores[:, j] >= t, zero_division=0.0) for t in GRID}
        chosen.append(max(GRID, key=lambda t: (round(by_f1[t], 6), -abs(t - 0.5))))
    return chosen


def micro_f1(selected: np.ndarray, gold: np.ndarray) -> float:
    """Micro-averaged F1 of 0/1 label matrices: every (text, label) decision counts the same."""
    return float(f1_score(gold, selected, average="micro", zero_division=0.0))


def f1_table(selected: np.ndarray, gold: np.ndarray, labels: Sequence[str]) -> dict[str, object]:
    """Macro and micro F1 and each label's F1, rounded for the manifest."""
    per_label = f1_score(gold, selected, average=None, zero_division=0.0)
    return {
        "macro_f1": round(float(f1_score(gold, selected, average="macro", zero_division=0.0)), 4),
        "micro_f1": round(micro_f1(selected, gold), 4),
        "per_label_f1": {label: round(float(f), 4) for label, f in zip(labels, per_label, strict=True)},
    }
