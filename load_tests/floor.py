"""The floor of a request's CPU on this server: a bare ASGI callable that reads the body and sends a
prebuilt JSON answer, served by the same uvicorn settings as the service (httptools, uvloop, no
access log). Whatever the service's front costs above it is routing, validation, the cache, the
pool and the metrics: ours to cut.

With FLOOR_MODEL_WORKERS=N (and TEXTCLF_MODEL_DIR), the floor of a cache miss: each text is also
sent to one of N of the service's own model workers (`service.model_worker`, the same wire
protocol) through the least a front can do, a FIFO and an idle list, and answered once the reply
is back; no validation, no cache, no metrics, no fault handling.

    python -m load_tests.floor --port 8002
    FLOOR_MODEL_WORKERS=2 TEXTCLF_MODEL_DIR=artifacts/sentiment python -m load_tests.floor --port 8002
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
from collections import deque
from collections.abc import Sequence

import uvicorn

from service.config import load_settings
from service.front.asgi import Receive, Scope, Send
from service.front.core.worker_link import spawn_worker
from service.manifest import load_artifact
from service.protocol import Codec, Reply, pack_job, take_hello

# The shape and size of a classify answer, so the floor writes as many bytes as the service does.
BODY = json.dumps(
    {
        "label": "positive",
        "score": 0.5,
        "scores": {"negative": 0.25, "neutral": 0.25, "positive": 0.5},
        "tokens": 16,
        "truncated": False,
        "cached": False,
        "model": {"name": "sentiment", "version": "0" * 16},
    },
    separators=(",", ":"),
).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


class BarePool:
    """The least a front does for a miss: one FIFO, an idle list, a job per idle worker."""

    def __init__(self, size: int) -> None:
        self.loop = asyncio.get_running_loop()
        settings = load_settings()
        artifact = load_artifact(settings.model_dir)
        self.codec = Codec(artifact.labels, artifact.thresholds)
        self.idle: list[socket.socket] = []
        self.queue: deque[tuple[int, str]] = deque()
        self.waiting: dict[int, asyncio.Future[Reply]] = {}
        self.next_id = 0
        self.workers = [spawn_worker(settings.for_model_workers().arguments()) for _ in range(size)]
        self.ready = self.loop.create_future()
        for _, sock in self.workers:
            self.loop.add_reader(sock.fileno(), self._on_hello, sock, bytearray())

    def _on_hello(self, sock: socket.socket, buffer: bytearray) -> None:
        buffer += sock.recv(1 << 16)
        if take_hello(buffer) is not None:
            self.loop.add_reader(sock.fileno(), self._on_reply, sock)
            self.idle.append(sock)
            if len(self.idle) == len(self.workers):
                self.ready.set_result(None)

    def predict(self, text: str) -> asyncio.Future[Reply]:
        self.next_id += 1
        future = self.waiting[self.next_id] = self.loop.create_future()
        self.queue.append((self.next_id, text))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        while self.queue and self.idle:
            self.idle.pop().send(pack_job(*self.queue.popleft()))

    def _on_reply(self, sock: socket.socket) -> None:
        reply = self.codec.unpack_reply(sock.recv(self.codec.reply_size))  # small: one recv takes it
        self.waiting.pop(reply.job_id).set_result(reply)
        self.idle.append(sock)
        self._dispatch()

    def close(self) -> None:
        for process, sock in self.workers:
            self.loop.remove_reader(sock.fileno())
            sock.close()  # the worker reads end of file and exits
            process.wait(30)


pool: BarePool | None = None


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer every HTTP request with BODY once its body is read (and, with model workers, its text
    classified)."""
    global pool
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            workers = int(os.environ.get("FLOOR_MODEL_WORKERS", "0"))
            if workers:
                pool = BarePool(workers)
                await pool.ready
            await send({"type": "lifespan.startup.complete"})
        if pool is not None:
            pool.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if pool is not None:
        await pool.predict(json.loads(body)["text"])
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the floor app on loopback with the service's uvicorn settings."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.floor", description=main.__doc__)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    uvicorn.run(
        app,
        host=args.address,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
