"""Slow clients against the real service: do trickling requests hurt normal ones?

    python -m load_tests.slow_clients --per-worker 100

Starts the service on loopback (2 workers, cache off), measures a closed-loop normal load alone,
then the same load while `per-worker` x workers connections trickle: half send their headers one
line a second and never finish them, half announce a 2,000-byte body and send one byte of it a
second. Reports both loads' status counts and latency, and what each kind of trickling
connection got back (408 once TEXTCLF_REQUEST_READ_TIMEOUT_SECONDS has passed). Bounded: the
trickles end at the read deadline plus a few seconds; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from load_tests.loadgen import LoadConfig, run_async
from load_tests.server import running_service
from load_tests.texts import DEFAULT_TEXTS, held_out_texts
from service.artifact import DEFAULT_MODEL_DIR

# What each kind of trickle sends first, then once a second.
TRICKLES = {
    "headers": (b"POST /v1/classify HTTP/1.1\r\nHost: %s\r\n", b"X-Slow: yes\r\n"),
    "body": (
        b"POST /v1/classify HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2000\r\n\r\n",
        b" ",
    ),
}


async def trickle(host: str, port: int, kind: str, until: float) -> tuple[str, float]:
    """One trickling connection: the status line it got back (or how it ended), and when (s)."""
    head, step = TRICKLES[kind]
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head % host.encode())
        while time.perf_counter() < until:
            writer.write(step)
            await writer.drain()
            try:
                line = await asyncio.wait_for(reader.readline(), 1.0)
            except TimeoutError:
                continue
            status = line.split(b" ")[1].decode() if line else "closed"
            return status, time.perf_counter() - started
        return "none", time.perf_counter() - started
    except ConnectionError:
        return "reset", time.perf_counter() - started
    finally:
        writer.close()


async def scenario(url: str, texts: Sequence[str], connections: int, seconds: float) -> dict[str, Any]:
    """The normal load alone, then alongside `connections` trickling ones."""
    config = LoadConfig(
        url=url + "/v1/classify", mode="closed", concurrency=4, requests=100_000, duration=seconds
    )
    alone = await run_async(config, texts)
    host, port = url.removeprefix("http://").split(":")
    until = time.perf_counter() + seconds + 10
    kinds = [kind for kind in TRICKLES for _ in range(connections // len(TRICKLES))]
    trickles = [asyncio.ensure_future(trickle(host, int(port), kind, until)) for kind in kinds]
    await asyncio.sleep(1)  # every trickling request is now waiting for its headers or body
    loaded = await run_async(config, texts)
    answers = await asyncio.gather(*trickles)
    return {
        "normal_alone": summary(alone),
        "normal_with_trickles": summary(loaded),
        "trickling_connections": len(kinds),
        "trickles_answered": {
            kind: dict(Counter(status for k, (status, _) in zip(kinds, answers, strict=True) if k == kind))
            for kind in TRICKLES
        },
        "trickle_answer_s_max": round(max(s for _, s in answers), 2),
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers the table in docs/limits.md needs."""
    latency = result["latency_ms"]
    return {
        "rps": result["throughput_rps"],
        "statuses": result["statuses"],
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure normal requests with and without trickling clients."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.slow_clients", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--per-worker", type=int, default=100, help="trickling connections per worker (half of each kind)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="each normal load's length")
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="JSON lines with a text field")
    args = parser.parse_args(argv)
    texts = held_out_texts(args.texts)
    env = {"TEXTCLF_CACHE_ENTRIES": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        with running_service(args.model_dir, Path(tmp) / "service.log", args.workers, env) as svc:
            report = asyncio.run(scenario(svc.url, texts, args.per_worker * args.workers, args.seconds))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
