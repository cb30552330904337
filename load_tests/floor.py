"""The floor of a request's CPU on this server: a bare ASGI callable that reads the body and sends a
prebuilt JSON answer, served by the same uvicorn settings as the service (httptools, uvloop, no
access log). Whatever the service's front costs above it is routing, validation, the cache, the
pool and the metrics: ours to cut.

    python -m load_tests.floor --port 8002
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import uvicorn

from service.guards import Receive, Scope, Send

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


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer every HTTP request with BODY once its body is read."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
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
