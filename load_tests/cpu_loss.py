"""What a pod does when its CPU is briefly taken, under each admission bound.

    python -m load_tests.cpu_loss --rate 800 --burst-rate 1900

For each bound (a count of waiting texts, TEXTCLF_ADMISSION_WAIT_SECONDS=0; and the default, a
bound on the wait a new text would have), starts the real
service on loopback (2 model workers, cache off) and runs two scenes with the test split's texts:

- **neighbour**: an open load at `--rate` (below capacity) while a second service starts beside it
  on the same cores (its model workers loading and warming: a noisy neighbour on a shared node);
- **burst**: an open load at `--burst-rate` (past capacity) for a few seconds.

It reports, by scene and bound, what was sent, answered 200, refused 429 (or 503), and the
latency of what was answered. Below capacity the better bound refuses less; past it, the one whose
answers come sooner serves its clients better. Loopback only, bounded in requests and time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from load_tests.loadgen import LoadConfig, run
from load_tests.server import free_port, running_service
from load_tests.texts import DEFAULT_TEXTS, held_out_texts
from service.artifact import DEFAULT_MODEL_DIR

BOUNDS: dict[str, dict[str, str]] = {
    # The bound before: 32 requests and as many waiting texts per model worker.
    "count (64 texts)": {"TEXTCLF_ADMISSION_WAIT_SECONDS": "0", "TEXTCLF_MAX_IN_FLIGHT": "32"},
    "wait (0.1 s, the default)": {},
}


def neighbour(model_dir: Path, log: Path, after: float, stop: threading.Event) -> None:
    """After `after` seconds, start a second service (its model workers load beside the first's),
    keep it until `stop`; its log says whether it got as far as serving."""
    if stop.wait(after):
        return
    env = dict(os.environ) | {
        "TEXTCLF_MODEL_DIR": str(model_dir),
        "TEXTCLF_HOST": "127.0.0.1",
        "TEXTCLF_PORT": str(free_port()),
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    stop.wait(60)
    process.terminate()
    process.wait(30)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """A run's counts by status and the latency of what was answered."""
    return {
        "sent": result["sent"],
        "statuses": result["statuses"],
        "answered_p50_ms": result["answered_latency_ms"]["p50"],
        "answered_p99_ms": result["answered_latency_ms"]["p99"],
        "answered_max_ms": result["answered_latency_ms"]["max"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run both scenes under both bounds; print and optionally write the table."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.cpu_loss", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS)
    parser.add_argument("--rate", type=float, required=True, help="requests/s below capacity (e.g. 85%%)")
    parser.add_argument("--burst-rate", type=float, required=True, help="requests/s past capacity (e.g. 2x)")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the neighbour scene")
    parser.add_argument(
        "--neighbour-after", type=float, default=2.0, help="when in it the neighbour starts, s"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    texts = held_out_texts(args.texts)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, env in BOUNDS.items():
            environment = {"TEXTCLF_CACHE_ENTRIES": "0"} | env
            with running_service(
                args.model_dir, Path(tmp) / "service.log", workers=2, env=environment
            ) as service:
                url = service.url + "/v1/classify"
                stop = threading.Event()
                side = threading.Thread(
                    target=neighbour,
                    args=(args.model_dir, Path(tmp) / "side.log", args.neighbour_after, stop),
                )
                side.start()
                try:
                    scene = LoadConfig(
                        url=url,
                        rate=args.rate,
                        requests=int(args.rate * args.seconds),
                        duration=args.seconds + 30,
                        max_in_flight=4096,
                    )
                    results[f"neighbour, {name}"] = summary(run(scene, texts))
                finally:
                    stop.set()
                    side.join()
                side_log = Path(tmp) / "side.log"
                # Did the neighbour load its models during the scene (what the scene is about)?
                started = side_log.exists() and "model workers ready" in side_log.read_text()
                results[f"neighbour, {name}"]["neighbour_loaded"] = started
                burst = LoadConfig(
                    url=url,
                    rate=args.burst_rate,
                    requests=int(args.burst_rate * 3),
                    duration=60,
                    max_in_flight=4096,
                )
                results[f"burst, {name}"] = summary(run(burst, texts))
    for name, row in results.items():
        print(f"{name}: {json.dumps(row)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
