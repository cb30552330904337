"""TF-IDF (1-2 grams) + logistic regression: the bar the transformer has to clear."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from models import data

C_GRID = (2.0, 4.0, 8.0, 16.0)


def run(data_dir: Path) -> dict[str, object]:
    """Fit on train for each C, pick C on validation, score that model once on test."""
    train, validation, test = (data.read_split(data_dir, s) for s in data.SPLITS)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform([e.text for e in train])
    x_val, x_test = (vectorizer.transform([e.text for e in split]) for split in (validation, test))
    y_train, y_val, y_test = ([e.label for e in split] for split in (train, validation, test))
    models = {c: LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train) for c in C_GRID}
    best_c = max(C_GRID, key=lambda c: accuracy_score(y_val, models[c].predict(x_val)))
    pred = models[best_c].predict(x_test)
    return {
        "model": "tfidf-1-2gram+logreg",
        "C": best_c,
        "accuracy": round(float(accuracy_score(y_test, pred)), 4),
        "macro_f1": round(float(f1_score(y_test, pred, average="macro")), 4),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Score the TF-IDF baseline on the test split."""
    parser = argparse.ArgumentParser(prog="python -m models.baseline", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="folder written by models.data")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.data), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
