"""Huge request heads against the real service: do they stall normal requests?

    python -m load_tests.big_heads --attackers 4

Starts the service on loopback (2 workers, cache off), measures one normal client in a closed
loop alone, then the same client while `attackers` processes each send, over and over, a 32 MB
request target (half of them) or a 32 MB header value (the other half) as fast as the socket
takes it. Reports the normal client's statuses and latency (its worst above all) both times, and
what the attackers got back (414 or 431 while the head is still arriving). Bounded: the attackers
stop with the normal load; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from load_tests.loadgen import LoadConfig, run_async
from load_tests.server import running_service
from load_tests.slow_clients import summary
from load_tests.texts import DEFAULT_TEXTS, held_out_texts
from service.artifact import DEFAULT_MODEL_DIR

HEAD_SIZE = 32 * 2**20
HEADS = {
    "request target": b"GET /v1/",
    "header value": b"POST /v1/classify HTTP/1.1\r\nHost: t\r\nX-Filler: ",
}


def attack(port: int, kind: str, seconds: float) -> dict[str, int]:
    """One attacker: huge heads of one kind, one connection after another, for `seconds`; the
    status lines (or how the connection ended) it got, counted."""
    payload = memoryview(HEADS[kind] + b"a" * HEAD_SIZE)
    answers: Counter[str] = Counter()
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            sent = 0
            try:
                while sent < len(payload):
                    sent += conn.send(payload[sent : sent + 65536])
            except OSError:
                pass  # refused: the server closed the connection
            try:
                line = conn.recv(64).split(b" ")
                answers[line[1].decode() if len(line) > 1 else "closed"] += 1
            except OSError:
                answers["reset"] += 1
    return dict(answers)


async def scenario(url: str, texts: Sequence[str], attackers: int, seconds: float) -> dict[str, Any]:
    """The normal client alone, then beside `attackers` processes sending huge heads."""
    config = LoadConfig(
        url=url + "/v1/classify", mode="closed", concurrency=1, requests=1_000_000, duration=seconds
    )
    alone = await run_async(config, texts)
    port = int(url.rsplit(":", 1)[1])
    kinds = [list(HEADS)[i % len(HEADS)] for i in range(attackers)]
    # Processes, not threads: the attack must not share this process's event loop and GIL.
    with multiprocessing.get_context("spawn").Pool(attackers) as pool:
        # Attack a little longer than the load, which starts once the attackers are at it.
        attacks = pool.starmap_async(attack, [(port, kind, seconds + 2) for kind in kinds])
        await asyncio.sleep(1)
        attacked = await run_async(config, texts)
        answered = await asyncio.to_thread(attacks.get, seconds + 60)
    return {
        "normal_alone": summary(alone) | {"max_ms": alone["latency_ms"]["max"]},
        "normal_with_attack": summary(attacked) | {"max_ms": attacked["latency_ms"]["max"]},
        "attackers": dict(Counter(kinds)),
        "attacks_answered": {
            kind: dict(
                sum((Counter(a) for k, a in zip(kinds, answered, strict=True) if k == kind), Counter())
            )
            for kind in HEADS
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure a normal client with and without clients sending 32 MB request heads."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.big_heads", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--attackers", type=int, default=4, help="processes sending huge heads (half of each kind)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="each normal load's length")
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="JSON lines with a text field")
    args = parser.parse_args(argv)
    texts = held_out_texts(args.texts)
    env = {"TEXTCLF_CACHE_ENTRIES": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        with running_service(args.model_dir, Path(tmp) / "service.log", args.workers, env) as svc:
            report = asyncio.run(scenario(svc.url, texts, args.attackers, args.seconds))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
