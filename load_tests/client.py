"""A minimal keep-alive HTTP/1.1 client on asyncio and httptools, cheap enough to share 2 cores.

The load generator runs on the same machine as the service, so every microsecond it spends per
request is taken from the service. Requests are pre-encoded bytes; responses are parsed by
httptools (C), which the service already depends on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httptools

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[bytes, bytes]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Target:
    """Where requests go: host, port and the request path, and the bearer token they carry."""

    host: str
    port: int
    path: str
    token: str | None = field(default=None, repr=False)  # never printed

    @classmethod
    def parse(cls, url: str, allow_remote: bool = False, token: str | None = None) -> Target:
        """Parse `http://host:port/path`; only loopback hosts unless `allow_remote` is set explicitly."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http:// URL, got {url!r}")
        if parts.hostname not in LOOPBACK and not parts.hostname.startswith("127.") and not allow_remote:
            raise ValueError(f"{parts.hostname} is not a loopback address; pass allow_remote to load it")
        return cls(parts.hostname, parts.port or 80, parts.path or "/", token)

    def post_json(self, payload: object) -> bytes:
        """One complete POST request with a JSON body, ready to write."""
        body = json.dumps(payload).encode()
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


def add_token_options(parser: argparse.ArgumentParser) -> None:
    """`--token` / `--token-file`: the bearer token of a service that requires one."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--token", help="bearer token to send (visible in the process list: prefer a file)")
    group.add_argument("--token-file", type=Path, help="file whose first line is the bearer token")


def token_option(args: argparse.Namespace) -> str | None:
    """The token given by `add_token_options`' flags, if any."""
    if args.token_file is not None:
        lines = [line.strip() for line in args.token_file.read_text().splitlines() if line.strip()]
        return lines[0] if lines else None
    return str(args.token) if args.token else None


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self.closed = False

    @classmethod
    async def open(cls, target: Target) -> Connection:
        """Connect to the target."""
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: cls(target), target.host, target.port)
        return connection

    async def request(self, raw: bytes) -> Response:
        """Send one pre-encoded request and wait for its response."""
        if self._transport is None or self.closed:
            raise ConnectionError("connection is closed")
        self._headers, self._body = {}, []
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self.closed = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(ConnectionError(f"bad HTTP response: {err}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("connection closed by the server"))

    def _fail(self, err: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(err)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            status = self._parser.get_status_code()
            self._waiter.set_result(Response(status, self._headers, b"".join(self._body)))
        if not self._parser.should_keep_alive():
            self.close()
