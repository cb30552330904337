"""TF-IDF (1-2 grams) + logistic regression: the bar the transformer has to clear."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.multiclass import OneVsRestClassifier

from models import data, multi_label
from service.artifact import MULTI_LABEL, SINGLE_LABEL, ProblemType, sha256

C_GRID = (2.0, 4.0, 8.0, 16.0)


CACHE = "baseline.json"  # in the data folder: the build packages several models on the same splits


def measured(data_dir: Path, problem: ProblemType = SINGLE_LABEL) -> dict[str, object]:
    """`run`'s result, computed once per set of splits (a minute of CPU on the default data) and
    read back while the splits' files are the same."""
    key = {"problem": problem, "splits": {s: sha256(data_dir / f"{s}.jsonl") for s in data.SPLITS}}
    cache = data_dir / CACHE
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["result"]  # type: ignore[no-any-return]
    result = run(data_dir, problem)
    cache.write_text(json.dumps({"key": key, "result": result}, indent=2))
    return result


def run(data_dir: Path, problem: ProblemType = SINGLE_LABEL) -> dict[str, object]:
    """Fit on train for each C, pick C on validation, score that model once on test (multi-label:
    one-vs-rest, its thresholds chosen on validation as the transformer's are)."""
    train, validation, test = (data.read_split(data_dir, s) for s in data.SPLITS)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform([e.text for e in train])
    x_val, x_test = (vectorizer.transform([e.text for e in split]) for split in (validation, test))
    if problem == MULTI_LABEL:
        labels = data.labels_of(train)
        hot = [
            multi_label.gold_matrix([e.labels for e in split], labels) for split in (train, validation, test)
        ]
        return _one_vs_rest((x_train, x_val, x_test), hot, labels)
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


def _one_vs_rest(x: Sequence[Any], y: Sequence[np.ndarray], labels: Sequence[str]) -> dict[str, object]:
    """A logistic regression per label on the splits' features `x` and 0/1 labels `y` (train,
    validation, test); C and the thresholds chosen on validation, by macro-F1."""
    (x_train, x_val, x_test), (y_train, y_val, y_test) = x, y
    fitted = {
        c: OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000)).fit(x_train, y_train) for c in C_GRID
    }
    thresholds = {
        c: np.array(multi_label.choose_thresholds(m.predict_proba(x_val), y_val)) for c, m in fitted.items()
    }

    def validation_f1(c: float) -> float:
        selected = fitted[c].predict_proba(x_val) >= thresholds[c]
        return float(f1_score(y_val, selected, average="macro", zero_division=0.0))

    best_c = max(C_GRID, key=validation_f1)
    selected = fitted[best_c].predict_proba(x_test) >= thresholds[best_c]
    return {"model": "tfidf-1-2gram+one-vs-rest-logreg", "C": best_c} | multi_label.f1_table(
        selected, y_test, labels
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Score the TF-IDF baseline on the test split."""
    parser = argparse.ArgumentParser(prog="python -m models.baseline", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="folder written by models.data")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.data), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
