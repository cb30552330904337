"""Drive a running service over HTTP: open model (constant arrival rate) or closed (max throughput).

    python -m load_tests.loadgen --mode open --rate 200 --requests 4000 --hit-ratio 0.4

Why our own driver: an open model sends each request on schedule whether or not earlier ones
have answered, so queueing shows up in the latency instead of slowing the sender down. Locust's
`constant_throughput` paces each user after its previous response (a closed model), wrk2, k6 and
vegeta are not in the registries this project can use, and `hey -q` paces each connection the
same closed way. Locust's per-request cost would also take a large share of a 2-core machine.
Texts come from the model's held-out test split, with a chosen share of repeats (cache hits).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from load_tests.client import Connection, Target, add_token_options, token_option
from load_tests.report import Recorder, markdown_table, summarize
from load_tests.texts import DEFAULT_TEXTS, TextMix, held_out_texts, mix

# Below the server's keep-alive timeout (uvicorn: 5 s): an older idle connection may be closing.
STALE_AFTER_SECONDS = 3.0


@dataclass(frozen=True)
class LoadConfig:
    """One run. `requests` and `duration` both bound it; whichever comes first ends it."""

    url: str = "http://127.0.0.1:8000/v1/classify"
    mode: Literal["open", "closed"] = "open"
    rate: float = 100.0  # open model: requests per second
    concurrency: int = 4  # closed model: connections, each sending back to back
    requests: int = 2000
    duration: float = 60.0  # seconds
    hit_ratio: float = 0.0
    hot_size: int = 64
    # Open model: opened up front; warm-up sends the hot set on each, to reach every worker.
    connections: int = 16
    max_in_flight: int = 256  # open model: the run stops, failed, when the service falls this far behind
    timeout: float = 30.0  # seconds per request
    seed: int = 0
    allow_remote: bool = False


class Pool:
    """Idle keep-alive connections, most recently used first; opens new ones when none is idle."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._idle: list[tuple[float, Connection]] = []

    async def acquire(self) -> Connection:
        while self._idle:
            since, connection = self._idle.pop()
            if not connection.closed and time.monotonic() - since < STALE_AFTER_SECONDS:
                return connection
            connection.close()
        return await Connection.open(self.target)

    def release(self, connection: Connection) -> None:
        if not connection.closed:
            self._idle.append((time.monotonic(), connection))

    def close(self) -> None:
        for _, connection in self._idle:
            connection.close()
        self._idle.clear()


async def _exchange(connection: Connection, raw: bytes, timeout: float, rec: Recorder) -> None:
    """One request and its response, recorded; a failed connection is closed."""
    sent = time.perf_counter()
    try:
        response = await asyncio.wait_for(connection.request(raw), timeout)
    except (OSError, TimeoutError) as err:  # ConnectionError is an OSError
        connection.close()
        rec.error(err)
        return
    rec.response(time.perf_counter() - sent, response.status, response.headers)


async def _send(pool: Pool, raw: bytes, timeout: float, rec: Recorder) -> None:
    connection = await pool.acquire()
    await _exchange(connection, raw, timeout, rec)
    pool.release(connection)


async def _open_model(config: LoadConfig, raws: Sequence[bytes], pool: Pool, rec: Recorder) -> int:
    """Send request i at start + i/rate, never waiting for earlier responses."""
    in_flight: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    sent = 0
    for i, raw in enumerate(raws):
        due = start + i / config.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        if now - start > config.duration:
            break
        if len(in_flight) >= config.max_in_flight:
            rec.stopped = f"more than {config.max_in_flight} requests in flight: the service fell behind"
            break
        rec.lag.append(now - due)
        task = asyncio.create_task(_send(pool, raw, config.timeout, rec))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        sent += 1
    if in_flight:
        await asyncio.wait(in_flight)
    return sent


async def _closed_model(
    config: LoadConfig, raws: Sequence[bytes], connections: Sequence[Connection], rec: Recorder
) -> int:
    """Users with a connection each, sending the next request as soon as the last one answered."""
    queue = iter(raws)
    deadline = time.perf_counter() + config.duration
    sent = 0

    async def user(connection: Connection) -> None:
        nonlocal sent
        for raw in queue:  # shared: each user takes the next request
            if time.perf_counter() > deadline:
                return
            if connection.closed:
                connection = await Connection.open(connection.target)
            sent += 1
            await _exchange(connection, raw, config.timeout, rec)
        connection.close()

    await asyncio.gather(*(user(c) for c in connections))
    return sent


async def _accepted(target: Target) -> Connection:
    """A connection a worker has accepted and answered on.

    Connections opened in a burst tend to be accepted by one worker that takes the whole
    backlog (seen: 8 of 8); one at a time, each goes to whichever worker accepts first.
    """
    connection = await Connection.open(target)
    auth = f"Authorization: Bearer {target.token}\r\n" if target.token else ""
    probe = f"GET /health/live HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n{auth}\r\n".encode()
    await connection.request(probe)
    return connection


async def _warm_up(target: Target, connections: Sequence[Connection], texts: TextMix, timeout: float) -> None:
    """Every hot text on every connection, so each worker has the hot set in its cache."""
    raws = [target.post_json({"text": t}) for t in texts.hot]

    async def warm(connection: Connection) -> None:
        for raw in raws:
            response = await asyncio.wait_for(connection.request(raw), timeout)
            if response.status != 200:
                raise SystemExit(f"warm-up got HTTP {response.status}: {response.body[:300]!r}")

    await asyncio.gather(*(warm(c) for c in connections))


async def run_async(config: LoadConfig, texts: Sequence[str], token: str | None = None) -> dict[str, Any]:
    """Warm up, run, and summarize; see LoadConfig."""
    # The token is not part of the config: the config goes into every report written.
    target = Target.parse(config.url, config.allow_remote, token)
    mixed = mix(texts, config.requests, config.hit_ratio, config.hot_size, config.seed)
    raws = [target.post_json({"text": t}) for t in mixed.sequence]
    # Closed model: one connection per user, like wrk and hey; open model: a pool that grows.
    n = config.concurrency if config.mode == "closed" else config.connections
    connections = [await _accepted(target) for _ in range(n)]
    pool = Pool(target)
    try:
        await _warm_up(target, connections, mixed, config.timeout)
        rec = Recorder()
        cpu, start = time.process_time(), time.perf_counter()
        if config.mode == "open":
            for connection in connections:
                pool.release(connection)
            sent = await _open_model(config, raws, pool, rec)
        else:
            sent = await _closed_model(config, raws, connections, rec)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        pool.close()
        for connection in connections:
            connection.close()
    return {"config": asdict(config)} | summarize(rec, wall, cpu, sent)


def run(config: LoadConfig, texts: Sequence[str], token: str | None = None) -> dict[str, Any]:
    """Blocking `run_async`."""
    return asyncio.run(run_async(config, texts, token))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one load test against a running service; exit 1 unless every request got a 2xx."""
    parser = argparse.ArgumentParser(
        prog="python -m load_tests.loadgen", description=main.__doc__, epilog=__doc__.split("\n\n")[2]
    )
    defaults = LoadConfig()
    parser.add_argument("--url", default=defaults.url)
    parser.add_argument("--mode", choices=["open", "closed"], default=defaults.mode)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="open model: requests/s")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="closed model")
    parser.add_argument("--requests", type=int, default=defaults.requests, help="at most this many")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="at most this long, s")
    parser.add_argument("--hit-ratio", type=float, default=defaults.hit_ratio, help="share of repeats")
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="JSON lines with a text field")
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback host")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--markdown", type=Path, help="write a Markdown table here")
    add_token_options(parser)
    args = parser.parse_args(argv)
    config = LoadConfig(
        url=args.url,
        mode=args.mode,
        rate=args.rate,
        concurrency=args.concurrency,
        requests=args.requests,
        duration=args.duration,
        hit_ratio=args.hit_ratio,
        allow_remote=args.allow_remote,
    )
    texts = held_out_texts(args.texts)
    try:
        result = run(config, texts, token_option(args))
    except ValueError as err:  # a bad URL or hit ratio
        parser.error(str(err))
    name = f"{config.mode} {config.rate:g}/s" if config.mode == "open" else f"closed x{config.concurrency}"
    table = markdown_table([(name, result)])
    print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if not result["passed"]:
        print(
            f"FAILED: statuses {result['statuses']}, errors {result['errors']}, {result['stopped']}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
