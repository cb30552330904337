"""Memory under unique texts: resident memory of the launcher and each worker while the cache fills.

    python -m load_tests.memory --duration 180 --cache-max-bytes 8388608

Every request carries a new text, so each one adds a cache entry until the byte bound starts
evicting; resident memory should rise while the cache fills and then stay flat. Reports it after
warm-up, at its peak and at the end, its growth over the last half of the run, and the cache's own
accounting from /metrics: the numbers behind the container's memory limit and the soak test.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from load_tests.loadgen import LoadConfig, run
from load_tests.server import running_service
from load_tests.texts import DEFAULT_TEXTS, held_out_texts
from service.artifact import DEFAULT_MODEL_DIR

MIB = 2**20


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc (VmRSS)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) * 1024 if match else 0


def heaviest_process_mib(pids: Sequence[int]) -> dict[str, float]:
    """Resident and private memory, MiB (from /proc's smaps_rollup), of the process with the most
    private memory: what no other process shares (a weights file mapped by each worker is shared),
    for the heaviest, so a per-worker bound holds for every worker."""
    rows = []
    for pid in pids:
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value, *_ = line.split()
            fields[name.rstrip(":")] = int(value) * 1024
        private = fields["Private_Clean"] + fields["Private_Dirty"]
        rows.append({"resident_mib": round(fields["Rss"] / MIB, 1), "private_mib": round(private / MIB, 1)})
    return max(rows, key=lambda r: r["private_mib"], default={"resident_mib": 0.0, "private_mib": 0.0})


class RssSampler:
    """Samples the resident memory of some processes on a thread, every `interval` seconds."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: dict[str, list[tuple[float, int]]] = {name: [] for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic() - start
            for name, pid in self.pids.items():
                self.samples[name].append((now, rss_bytes(pid)))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, dict[str, float]]:
        """Per process, MiB: first sample, peak, last, and growth from mid-run to the end."""
        out = {}
        for name, samples in self.samples.items():
            values = [v for _, v in samples]
            half = values[len(values) // 2 :]
            out[name] = {
                "start_mib": round(values[0] / MIB, 1),
                "peak_mib": round(max(values) / MIB, 1),
                "end_mib": round(values[-1] / MIB, 1),
                "last_half_growth_mib": round((half[-1] - min(half)) / MIB, 1),
            }
        return out


def metric(text: str, name: str) -> float:
    """Sum of one metric's samples in an exposition text (all label sets)."""
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def measure(
    model_dir: Path,
    texts: Sequence[str],
    workers: int,
    cache_max_bytes: int,
    duration: float,
    concurrency: int = 4,
    log: Path | None = None,
    requests: int | None = None,
) -> dict[str, Any]:
    """Run unique texts through a fresh service for `duration` s (or until `requests` were sent),
    sampling every process's memory."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"TEXTCLF_CACHE_MAX_BYTES": str(cache_max_bytes), "TEXTCLF_CACHE_ENTRIES": "10000000"}
        with running_service(model_dir, log or Path(tmp) / "service.log", workers, env) as svc:
            pids = {"front": svc.process.pid} | {
                f"model worker {i}": pid for i, pid in enumerate(svc.model_worker_pids())
            }
            config = LoadConfig(
                url=svc.url + "/v1/classify",
                mode="closed",
                concurrency=concurrency,
                # By default above what 2 cores serve (~250/s unique): `duration` ends the run.
                requests=requests or int(duration * 400),
                duration=duration,
            )
            with RssSampler(pids) as sampler:
                load = run(config, texts)
            exposition = httpx.get(svc.url + "/metrics", timeout=10).text
    return {
        "workers": workers,
        "cache_max_bytes": cache_max_bytes,
        "duration_s": duration,
        "requests": load["sent"],
        "throughput_rps": load["throughput_rps"],
        "passed": load["passed"],
        "rss": sampler.summary(),
        "cache": {
            "entries": metric(exposition, "textclf_cache_entries"),
            "bytes_accounted": metric(exposition, "textclf_cache_bytes"),
            "evictions": metric(exposition, "textclf_cache_evictions_total"),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Fill the result cache with unique texts and report resident memory per process."""
    parser = argparse.ArgumentParser(
        prog="python -m load_tests.memory", description=main.__doc__, epilog=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="JSON lines with a text field")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-max-bytes", type=int, default=64 * MIB, help="per worker")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    report = measure(
        args.model_dir, held_out_texts(args.texts), args.workers, args.cache_max_bytes, args.duration
    )
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
