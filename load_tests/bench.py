"""`make bench`: the ladder, the service under load, and the peer, side by side in one run.

Writes the tables between the markers in BENCHMARKS.md (the prose around them is kept) and
every raw number to bench-results/bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from load_tests import ladder
from load_tests.loadgen import LoadConfig, run
from load_tests.report import markdown_table
from load_tests.server import free_port, running_service
from load_tests.texts import held_out_texts

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
CACHE_OFF = {"TEXTCLF_CACHE_ENTRIES": "0"}


def machine() -> dict[str, Any]:
    """CPU model, cores, the instruction sets that matter for int8, and library versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    flags = set(re.search(r"^flags\s*:(.*)$", cpuinfo, re.M).group(1).split())  # type: ignore[union-attr]
    return {
        "cpu": re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M).group(1),  # type: ignore[union-attr]
        "cores": len(re.findall(r"^processor\s*:", cpuinfo, re.M)),
        "int8_flags": sorted(f for f in flags if f in {"avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni"}),
        "python": platform.python_version(),
        "versions": {
            p: version(p)
            for p in ("onnxruntime", "torch", "transformers", "fastapi", "uvicorn", "tokenizers")
        },
    }


@contextmanager
def running_peer(checkpoint: Path, log: Path, timeout: float = 180) -> Iterator[str]:
    """The peer app (load_tests.peer) under uvicorn's defaults on a free loopback port."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "load_tests.peer:create_app"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=dict(os.environ) | {"PEER_MODEL_DIR": str(checkpoint)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1/classify"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"peer did not start:\n{log.read_text()[-2000:]}")
            try:
                if httpx.post(url, json={"text": "ready?"}, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def load(name: str, results: dict[str, Any], texts: Sequence[str], **config: Any) -> dict[str, Any]:
    """One load run; any non-2xx stops the benchmark."""
    result = run(LoadConfig(**config), texts)
    if not result["passed"]:
        raise SystemExit(f"{name}: {result['statuses']} {result['errors']} {result['stopped']}")
    print(markdown_table([(name, result)]).splitlines()[-1], flush=True)
    results[name] = result
    return result


def run_http(model_dir: Path, checkpoint: Path, texts: Sequence[str], tmp: Path) -> dict[str, Any]:
    """Every HTTP run; names say the service, its settings and the load."""
    r: dict[str, Any] = {}

    def service(workers: int, env: dict[str, str]) -> Any:
        return running_service(model_dir, tmp / f"service-{len(r)}.log", workers=workers, env=env)

    with service(1, CACHE_OFF) as s:
        url = s.url + "/v1/classify"
        load("1 worker, cache off, closed x4", r, texts, url=url, mode="closed", concurrency=4, requests=1500)
    with service(2, CACHE_OFF) as s:
        url = s.url + "/v1/classify"
        top = load(
            "2 workers, cache off, closed x8", r, texts, url=url, mode="closed", concurrency=8, requests=2800
        )
        rate = round(0.7 * top["throughput_rps"])
        load(f"2 workers, cache off, open {rate}/s (70%)", r, texts, url=url, rate=rate, requests=rate * 15)
    for hits in (0.4, 0.8):
        with service(2, {}) as s:  # a new service each: an empty cache
            url = s.url + "/v1/classify"
            requests = int(1500 / (1 - hits))  # 1500 new texts, within the test split
            name = f"2 workers, cache on, {hits:.0%} hits, closed x8"
            load(name, r, texts, url=url, mode="closed", concurrency=8, requests=requests, hit_ratio=hits)
    with service(2, CACHE_OFF | {"TEXTCLF_INFERENCE_THREAD": "false"}) as s:
        url = s.url + "/v1/classify"
        load("2 workers, cache off, inference on the event loop, closed x8", r, texts, url=url, mode="closed",
             concurrency=8, requests=2800)  # fmt: skip
        name = f"2 workers, cache off, inference on the event loop, open {rate}/s"
        load(name, r, texts, url=url, rate=rate, requests=rate * 15)
    with running_peer(checkpoint, tmp / "peer.log") as url:
        peer = load(
            "peer, closed x8", r, texts, url=url, mode="closed", concurrency=8, requests=600, duration=30
        )
        equal = round(0.7 * peer["throughput_rps"])
        load(f"peer, open {equal}/s (70% of its max)", r, texts, url=url, rate=equal, requests=equal * 20)
    with service(2, CACHE_OFF) as s:
        load(f"2 workers, cache off, open {equal}/s (peer's 70%)", r, texts, url=s.url + "/v1/classify",
             rate=equal, requests=equal * 20)  # fmt: skip
    return r


def targets(ladder_rows: list[dict[str, Any]], http: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Each target of the load-tests issue: what it asks, what we measured, met or not."""
    steps = {row["step"][:3]: row for row in ladder_rows}
    single = steps["(d)"]["texts_per_s"]
    names = list(http)
    rps = {n: http[n]["throughput_rps"] for n in names}
    two, open70 = names[1], names[2]
    hit40, peer, peer_open, ours_open = names[3], names[7], names[8], names[9]
    p50, p99 = http[open70]["latency_ms"]["p50"], http[open70]["latency_ms"]["p99"]
    peer_p99, ours_p99 = http[peer_open]["latency_ms"]["p99"], http[ours_open]["latency_ms"]["p99"]
    speedup = steps["(d)"]["latency_speedup"]
    return [
        ("(d) vs (a): p50 at 16 tokens ≥ 5x lower", f"{speedup}x", speedup >= 5),
        (
            "2 workers, cache off: ≥ 80% of 2x single-thread model-only throughput",
            f"{rps[two]} rps = {rps[two] / (2 * single):.0%} of 2 x {single}",
            rps[two] >= 0.8 * 2 * single,
        ),
        ("at 70% of max: p99 ≤ 3x p50", f"p99 {p99} ms = {p99 / p50:.1f}x p50 {p50} ms", p99 <= 3 * p50),
        (
            "40% hits: ≥ 1.5x cache-off throughput",
            f"{rps[hit40] / rps[two]:.2f}x",
            rps[hit40] >= 1.5 * rps[two],
        ),
        ("vs the peer: ≥ 5x throughput", f"{rps[two] / rps[peer]:.1f}x", rps[two] >= 5 * rps[peer]),
        ("vs the peer at equal load: lower p99", f"{ours_p99} vs {peer_p99} ms", ours_p99 < peer_p99),
    ]


def render(info: dict[str, Any], ladder_rows: list[dict[str, Any]], http: dict[str, Any]) -> str:
    """The generated part of BENCHMARKS.md."""
    lines = [
        START,
        f"Generated by `make bench` on {time.strftime('%Y-%m-%d')}: {info['cpu']}, {info['cores']} cores, "
        f"flags {', '.join(info['int8_flags'])}; Python {info['python']}, "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + ".",
        "",
        "### Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in targets(ladder_rows, http)),
        "",
        "### The ladder (in-process, one thread)",
        "",
        ladder.markdown(ladder_rows),
        "",
        "### Over HTTP (client side; server stage times from response headers)",
        "",
        markdown_table(list(http.items())),
        END,
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every benchmark and write BENCHMARKS.md's tables and bench-results/bench.json."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.bench", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("artifacts/minilm-l6-sentiment"))
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--results", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    work = args.model_dir.with_name(args.model_dir.name + ".work")
    texts = held_out_texts(work / "data" / "test.jsonl")
    info = machine()
    ladder_rows = ladder.run_ladder(args.model_dir, work, texts)
    print(ladder.markdown(ladder_rows), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        http = run_http(args.model_dir, work / "checkpoint", texts, Path(tmp))
    args.results.mkdir(exist_ok=True)
    (args.results / "bench.json").write_text(
        json.dumps({"machine": info, "ladder": ladder_rows, "http": http}, indent=2)
    )
    block = render(info, ladder_rows, http)
    old = args.out.read_text() if args.out.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    before, _, rest = old.partition(START)
    args.out.write_text(before + block + rest.partition(END)[2])
    print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
