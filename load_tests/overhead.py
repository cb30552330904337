"""What the HTTP layer adds at low load: end-to-end p50 vs model-only p50 for the same text.

Starts the real service (1 worker, cache off; one service per variant of settings) on loopback,
drives it with `hey` at a low constant rate, and times the same text in-process through the same
tokenizer and ONNX session, both back to back ("hot") and paced at the same rate as the HTTP
requests ("paced": an idle CPU between requests slows the model too). It also times a request that
does no work (GET /health/live) at the same rate: the floor any HTTP round trip costs on this
machine with this client, so the rest is what the classify path itself adds. Rounds alternate all
of them, so machine noise hits every row alike.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from load_tests.server import running_service
from service.artifact import DEFAULT_MODEL_DIR
from service.manifest import load_artifact
from service.model.classifier import Classifier

DEFAULT_TEXT = "just got my new phone and the battery life is amazing so far"


def model_only_ms(classifier: Classifier, text: str, runs: int, rate: float | None) -> float:
    """p50 ms of tokenize + inference for `text` on one thread, back to back or at `rate`/s."""
    samples = []
    period = 1 / rate if rate else 0.0
    for _ in range(runs):
        start = time.perf_counter()
        classifier.predict(text)
        took = time.perf_counter() - start
        samples.append(took)
        if period > took:
            time.sleep(period - took)
    return float(np.percentile(samples, 50)) * 1e3


def hey_ms(url: str, text: str | None, requests: int, rate: float) -> dict[str, float]:
    """p50/p99 client-side latency from `hey` with one connection at `rate` requests/s, in ms.

    With a text, POSTs it to /v1/classify; without, GETs /health/live (no work: the HTTP floor).
    """
    if shutil.which("hey") is None:
        raise SystemExit("hey is not installed: apt-get install hey")
    request = (
        ["-m", "POST", "-T", "application/json", "-d", json.dumps({"text": text}), url + "/v1/classify"]
        if text is not None
        else [url + "/health/live"]
    )
    out = subprocess.run(
        ["hey", "-n", str(requests), "-c", "1", "-q", str(rate), *request],
        capture_output=True,
        text=True,
        check=True,
        timeout=requests / rate + 120,
    ).stdout
    statuses = dict(re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", out, re.M))
    if statuses != {"200": str(requests)}:
        raise SystemExit(f"expected {requests} responses with status 200, got {statuses}:\n{out}")
    quantiles = {int(q): float(s) * 1e3 for q, s in re.findall(r"(\d+)%+ in ([\d.]+) secs", out)}
    return {"p50_ms": quantiles[50], "p99_ms": quantiles[99]}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure end-to-end vs model-only latency for one text at low load."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.overhead", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--requests", type=int, default=500, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (low load)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:VAR=VALUE[,VAR=VALUE]",
        help="also measure the service with these TEXTCLF_* settings (repeatable)",
    )
    args = parser.parse_args(argv)
    variants: dict[str, dict[str, str]] = {"default": {}}
    for spec in args.variant:
        name, _, assignments = spec.partition(":")
        variants[name] = dict(a.split("=", 1) for a in assignments.split(",") if a)
    classifier = Classifier.from_artifact(load_artifact(args.model_dir))
    classifier.warm_up(20)
    rows: dict[str, list[float]] = {"model-only, hot": [], "model-only, paced": []}
    p99: dict[str, list[float]] = {}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        services = {
            name: stack.enter_context(
                running_service(
                    args.model_dir, tmp / f"{name}.log", workers=1, env={"TEXTCLF_CACHE_ENTRIES": "0"} | env
                )
            )
            for name, env in variants.items()
        }
        for _ in range(args.rounds):
            rows["model-only, hot"].append(model_only_ms(classifier, args.text, args.requests, None))
            rows["model-only, paced"].append(model_only_ms(classifier, args.text, args.requests, args.rate))
            floor = hey_ms(services["default"].url, None, args.requests, args.rate)
            rows.setdefault("HTTP no-op route (GET /health/live)", []).append(floor["p50_ms"])
            for name, svc in services.items():
                result = hey_ms(svc.url, args.text, args.requests, args.rate)
                rows.setdefault(f"HTTP {name}", []).append(result["p50_ms"])
                p99.setdefault(f"HTTP {name}", []).append(result["p99_ms"])
    p50 = {name: round(statistics.median(v), 2) for name, v in rows.items()}
    report = {
        "text_tokens": classifier.tokenizer.encode(args.text).n_tokens,
        "rate_rps": args.rate,
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "p50_ms_median_of_rounds": p50,
        "p99_ms_median_of_rounds": {name: round(statistics.median(v), 2) for name, v in p99.items()},
        "http_minus_paced_model_p50_ms": {
            name: round(v - p50["model-only, paced"], 2)
            for name, v in p50.items()
            if name.startswith("HTTP ") and "no-op" not in name
        },
        "http_floor_p50_ms": p50["HTTP no-op route (GET /health/live)"],
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
