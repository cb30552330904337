"""Why Python after a model call is slow: the same small Python work, hot vs right after inference.

`python -m load_tests.cold_cache` times parse + validate + serialize work (a stand-in for the
per-request code around the model) back to back, then right after each predict().
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from load_tests.overhead import DEFAULT_TEXT
from service.artifact import DEFAULT_MODEL_DIR
from service.front.api.schemas import ClassifyRequest
from service.manifest import load_artifact
from service.model.classifier import Classifier


def python_work() -> str:
    """Parse, validate and serialize a request-sized body five times."""
    out = ""
    for _ in range(5):
        body = ClassifyRequest.model_validate_json(json.dumps({"text": DEFAULT_TEXT}))
        out = json.dumps(
            {"label": "positive", "score": 0.9, "scores": {"a": 0.1, "b": 0.2}, "text": body.text}
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print p50 microseconds of the same Python work, hot and right after inference."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.cold_cache", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args(argv)
    classifier = Classifier.from_artifact(load_artifact(args.model_dir))
    classifier.warm_up(20)
    hot, after_model = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        python_work()
        hot.append(time.perf_counter() - start)
    for _ in range(args.runs):
        classifier.predict(DEFAULT_TEXT)
        start = time.perf_counter()
        python_work()
        after_model.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "hot_p50_us": round(statistics.median(hot) * 1e6, 1),
                "after_inference_p50_us": round(statistics.median(after_model) * 1e6, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
