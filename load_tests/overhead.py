"""What the HTTP layer adds at low load: end-to-end p50 vs model-only p50 for the same text.

Starts the real service (1 worker, cache off) on a loopback port, drives it with `hey` at a low
constant rate, and times the same text in-process through the same tokenizer and ONNX session.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from load_tests.server import running_service
from service.artifact import load_artifact
from service.classifier import Classifier

DEFAULT_TEXT = "just got my new phone and the battery life is amazing so far"


def model_only_ms(model_dir: Path, text: str, runs: int) -> dict[str, float]:
    """p50/p99 of tokenize + inference for `text` on one thread, in ms."""
    classifier = Classifier(load_artifact(model_dir))
    classifier.warm_up(20)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        classifier.predict(text)
        samples.append(time.perf_counter() - start)
    return {
        "p50_ms": round(float(np.percentile(samples, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(samples, 99)) * 1e3, 3),
    }


def hey_ms(url: str, text: str, requests: int, rate: float) -> dict[str, float]:
    """p50/p99 client-side latency from `hey` with one connection at `rate` requests/s, in ms."""
    if shutil.which("hey") is None:
        raise SystemExit("hey is not installed: apt-get install hey")
    out = subprocess.run(
        [
            "hey",
            "-n",
            str(requests),
            "-c",
            "1",
            "-q",
            str(rate),
            "-m",
            "POST",
            "-T",
            "application/json",
            "-d",
            json.dumps({"text": text}),
            url + "/v1/classify",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=requests / rate + 120,
    ).stdout
    if "[200]" not in out or re.search(r"\[(?!200)\d{3}\]", out):
        raise SystemExit(f"non-200 responses from the service:\n{out}")
    quantiles = {int(q): float(s) * 1e3 for q, s in re.findall(r"(\d+)%+ in ([\d.]+) secs", out)}
    return {"p50_ms": round(quantiles[50], 3), "p99_ms": round(quantiles[99], 3)}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure end-to-end vs model-only latency for one text at low load."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.overhead", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("artifacts/minilm-l6-sentiment"))
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--requests", type=int, default=2000)
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
    tokens = Classifier(load_artifact(args.model_dir)).tokenizer.encode(args.text).n_tokens
    before = model_only_ms(args.model_dir, args.text, args.requests)
    http: dict[str, dict[str, float]] = {}
    for name, env in variants.items():
        with (
            tempfile.TemporaryDirectory() as tmp,
            running_service(
                args.model_dir, Path(tmp) / "service.log", workers=1, env={"TEXTCLF_CACHE_ENTRIES": "0"} | env
            ) as svc,
        ):
            http[name] = hey_ms(svc.url, args.text, args.requests, args.rate)
    after = model_only_ms(args.model_dir, args.text, args.requests)
    model_p50 = min(before["p50_ms"], after["p50_ms"])
    report = {
        "text_tokens": tokens,
        "requests": args.requests,
        "rate_rps": args.rate,
        "model_only_before": before,
        "model_only_after": after,
        "end_to_end": http,
        "http_overhead_p50_ms": {name: round(h["p50_ms"] - model_p50, 3) for name, h in http.items()},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
