"""A burst far above capacity: how many get answers, how fast the rest are refused, how soon it recovers.

    python -m load_tests.burst --requests 1000 --workers 2

Starts the real service on loopback, opens one connection per request, then sends every request
at once (unique texts, so every admitted one is a cache miss), and reports counts and latency by
status, then how long until a fresh request is answered 200 again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from load_tests.client import Connection, Response, Target, add_token_options, token_option
from load_tests.report import percentiles
from load_tests.server import running_service
from service.artifact import DEFAULT_MODEL_DIR


async def _burst(url: str, n: int, timeout: float, token: str | None) -> list[tuple[Response | None, float]]:
    target = Target.parse(url + "/v1/classify", token=token)
    connections = [await Connection.open(target) for _ in range(n)]
    raws = [target.post_json({"text": f"burst {i} {uuid.uuid4()}"}) for i in range(n)]

    async def one(connection: Connection, raw: bytes) -> tuple[Response | None, float]:
        start = time.perf_counter()
        try:
            response: Response | None = await asyncio.wait_for(connection.request(raw), timeout)
        except (ConnectionError, TimeoutError):
            response = None
        return response, time.perf_counter() - start

    try:
        return await asyncio.gather(*(one(c, r) for c, r in zip(connections, raws, strict=True)))
    finally:
        for connection in connections:
            connection.close()


def send_at_once(
    url: str, n: int, timeout: float = 120, token: str | None = None
) -> list[tuple[Response | None, float]]:
    """Open n connections first, then send a unique text on each at once.

    (response, seconds) each; None for a request whose connection broke or timed out.
    """
    return asyncio.run(_burst(url, n, timeout, token))


def recovery_seconds(url: str, timeout: float = 30, token: str | None = None) -> float:
    """Seconds until a new text is answered 200."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        text = {"text": f"after {uuid.uuid4()}"}
        if httpx.post(url + "/v1/classify", json=text, headers=headers).status_code == 200:
            return time.perf_counter() - start
    raise RuntimeError(f"not answering 200 after {timeout} s")


def run(
    model_dir: Path, requests: int, workers: int, env: dict[str, str], token: str | None = None
) -> dict[str, Any]:
    """One burst against a fresh service; counts and latency (ms) by status, and recovery time.

    With a token, the service requires it (as a secured deployment does) and every request sends it.
    """
    secured = env | {"TEXTCLF_API_TOKENS": token} if token else env
    with tempfile.TemporaryDirectory() as tmp:
        with running_service(model_dir, Path(tmp) / "service.log", workers, secured) as svc:
            started = time.perf_counter()
            results = send_at_once(svc.url, requests, token=token)
            wall = time.perf_counter() - started
            recovery = recovery_seconds(svc.url, token=token)
    by_status: dict[str, list[float]] = {}
    for response, seconds in results:
        by_status.setdefault(str(response.status if response else None), []).append(seconds)
    return {
        "requests": requests,
        "workers": workers,
        "env": env,
        "token": token is not None,  # never its value
        "wall_s": round(wall, 3),
        "by_status": {s: {"count": len(v)} | percentiles(v, 1e3) for s, v in sorted(by_status.items())},
        "recovery_ms": round(recovery * 1e3, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Send a burst of requests at once and report what the service did with them."""
    parser = argparse.ArgumentParser(
        prog="python -m load_tests.burst", description=main.__doc__, epilog=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="VAR=VALUE", help="TEXTCLF_* setting")
    add_token_options(parser)
    args = parser.parse_args(argv)
    env = dict(s.split("=", 1) for s in args.set)
    print(json.dumps(run(args.model_dir, args.requests, args.workers, env, token_option(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
