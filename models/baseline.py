"""TF-IDF (1-2 grams) + logistic regression: the bar the transformer has to clear."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline

from models import data

C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)


def run(data_dir: Path) -> dict[str, object]:
    """Fit on train, pick C on validation, score once on test."""
    train, validation, test = (data.read_split(data_dir, s) for s in data.SPLITS)

    def fit(c: float) -> object:
        pipe = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            LogisticRegression(C=c, max_iter=2000),
        )
        return pipe.fit([e.text for e in train], [e.label for e in train])

    def score(model: object, split: Sequence[data.Example]) -> tuple[float, float]:
        pred = model.predict([e.text for e in split])  # type: ignore[attr-defined]
        gold = [e.label for e in split]
        return float(accuracy_score(gold, pred)), float(f1_score(gold, pred, average="macro"))

    best_c = max(C_GRID, key=lambda c: score(fit(c), validation)[0])
    acc, f1 = score(fit(best_c), test)
    return {"model": "tfidf-1-2gram+logreg", "C": best_c, "accuracy": round(acc, 4), "macro_f1": round(f1, 4)}


def main(argv: Sequence[str] | None = None) -> int:
    """Score the TF-IDF baseline on the test split."""
    parser = argparse.ArgumentParser(prog="python -m models.baseline", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="folder written by models.data")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.data), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
