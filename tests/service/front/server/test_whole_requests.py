"""The connection protocol answers a request that came whole through the app's `answer`, without an
ASGI cycle, and keeps HTTP/1.1's rules doing so: keep-alive and its end, order on a pipelined
connection, a graceful shutdown, a client gone; anything else goes the ASGI way whole. A real
transport on one end of a socket pair, the test's socket on the other."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from service.front.asgi import Receive, Scope, Send
from service.front.edge.edge import Response
from service.front.edge.route_table import Match, RouteTable
from service.front.server.head_limits import HeadLimits
from service.front.server.http_protocol import GuardedHttpProtocol
from tests.support.waiting import until


class App:
    """An edge stand-in: takes whole POST /v1/classify requests (unless asked not to) and echoes
    each body whichever way it came, noting the way."""

    def __init__(self) -> None:
        self.table = RouteTable()
        self.whole: list[bytes] = []
        self.asgi: list[bytes] = []
        self.hold = asyncio.Event()  # answers wait for it
        self.hold.set()
        self.cancelled = 0

    def whole_request(self, method: str, path: str, headers: Mapping[bytes, bytes]) -> Match | None:
        if method != "POST" or path != "/v1/classify" or b"x-not-whole" in headers:
            return None
        return self.table.match(path)

    async def answer(
        self, method: str, path: str, match: Match, headers: Mapping[bytes, bytes], body: bytes
    ) -> Response:
        self.whole.append(body)
        try:
            await self.hold.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return Response(200, [(b"content-length", b"%d" % len(body)), (b"x-way", b"whole")], body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.asgi.append(body)
        headers = [(b"content-length", b"%d" % len(body)), (b"x-way", b"asgi")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Peer:
    """The client's end of the connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    async def response(self) -> tuple[bytes, dict[bytes, bytes], bytes]:
        """The next response: its status line, headers and body (b"" at end of file)."""
        while b"\r\n\r\n" not in self.buffer:
            if not await self._more():
                return b"", {}, b""
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        if status.startswith(b"HTTP/1.1 1"):  # an interim response (100 Continue): the answer follows
            return await self.response()
        headers = dict(line.split(b": ", 1) for line in lines)
        size = int(headers[b"content-length"])
        while len(self.buffer) < size:
            await self._more()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return status, headers, body

    async def closed(self) -> bool:
        """Whether the server closes the connection with nothing more sent."""
        return not self.buffer and not await self._more()

    async def _more(self) -> bool:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 65536), 10)
        self.buffer += data
        return bool(data)


Scenario = Callable[[GuardedHttpProtocol, App, Peer], Awaitable[None]]


def over_a_connection(scenario: Scenario, **config: Any) -> None:
    """Run `scenario` with the protocol on a real transport, its app and the client's end; `config`
    is uvicorn's."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        app = App()
        # As the launcher configures uvicorn: no proxy headers, so the app is not wrapped.
        settings = Config(app=app, proxy_headers=False, log_level="warning", **config)
        protocol = GuardedHttpProtocol(
            settings,
            ServerState(),
            {},
            loop,
            header_timeout=5.0,
            max_connections=8,
            head_limits=HeadLimits(request_line=8192, header_line=8192, head=65536),
        )
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, ours)
        try:
            await scenario(protocol, app, Peer(theirs))
        finally:
            transport.close()
            theirs.close()

    asyncio.run(main())


def request(body: bytes, *headers: bytes, version: bytes = b"1.1", path: bytes = b"/v1/classify") -> bytes:
    head = [b"POST " + path + b" HTTP/" + version, b"host: test", b"content-type: application/json"]
    head += [b"content-length: %d" % len(body), *headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def test_a_request_that_came_whole_is_answered_without_asgi_and_the_connection_kept() -> None:
    async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer) -> None:
        for body in (b'{"text": "one"}', b'{"text": "two"}'):
            protocol.data_received(request(body))
            status, headers, answered = await peer.response()
            assert (status, headers[b"x-way"], answered) == (b"HTTP/1.1 200 OK", b"whole", body)
            assert b"connection" not in headers
        assert app.whole == [b'{"text": "one"}', b'{"text": "two"}'] and app.asgi == []
        await until(lambda: not protocol.tasks, "the answers' tasks to end")

    over_a_connection(scenario)


def test_a_body_that_comes_after_its_head_goes_the_asgi_way_whole() -> None:
    async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer) -> None:
        raw = request(b'{"text": "in two parts"}')
        protocol.data_received(raw[:-10])
        protocol.data_received(raw[-10:])
        _, headers, answered = await peer.response()
        assert (headers[b"x-way"], answered) == (b"asgi", b'{"text": "in two parts"}')
        assert app.whole == []
        protocol.data_received(request(b"{}"))  # the next one, whole, takes the whole way again
        assert (await peer.response())[1][b"x-way"] == b"whole"

    over_a_connection(scenario)


def test_a_request_the_app_does_not_take_whole_goes_the_asgi_way() -> None:
    async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer) -> None:
        protocol.data_received(request(b"{}", b"x-not-whole: 1"))
        assert (await peer.response())[1][b"x-way"] == b"asgi"
        assert app.whole == [] and app.asgi == [b"{}"]

    over_a_connection(scenario)


def test_a_client_asking_to_close_gets_its_answer_then_the_close() -> None:
    for raw in (request(b"{}", b"connection: close"), request(b"{}", version=b"1.0")):

        async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer, raw: bytes = raw) -> None:
            protocol.data_received(raw)
            _, headers, _ = await peer.response()
            assert (headers[b"x-way"], headers[b"connection"]) == (b"whole", b"close")
            assert await peer.closed()

        over_a_connection(scenario)


def test_pipelined_requests_are_answered_in_order() -> None:
    async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer) -> None:
        app.hold.clear()
        protocol.data_received(request(b'{"n": 1}') + request(b'{"n": 2}'))
        await until(lambda: app.whole, "the first request to be answering")
        assert app.asgi == []  # the second waits for the first's answer
        app.hold.set()
        first, second = await peer.response(), await peer.response()
        assert (first[1][b"x-way"], first[2]) == (b"whole", b'{"n": 1}')
        assert second[2] == b'{"n": 2}'

    over_a_connection(scenario)


def test_a_graceful_shutdown_answers_the_request_then_closes() -> None:
    async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer) -> None:
        app.hold.clear()
        protocol.data_received(request(b"{}"))
        await until(lambda: app.whole, "the request to be answering")
        assert len(protocol.tasks) == 1  # what uvicorn's shutdown waits for
        protocol.shutdown()
        app.hold.set()
        _, headers, body = await peer.response()
        assert (headers[b"connection"], body) == (b"close", b"{}")
        assert await peer.closed()

    over_a_connection(scenario)


def test_an_answer_for_a_client_gone_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer) -> None:
        app.hold.clear()
        protocol.data_received(request(b"{}"))
        await until(lambda: app.whole, "the request to be answering")
        [answering] = protocol.tasks
        protocol.transport.close()  # as when the client hangs up
        await until(lambda: protocol.parser is None, "the connection to be lost")
        app.hold.set()
        await until(answering.done, "the answer's task to end")
        assert answering.exception() is None
        assert await peer.closed()

    over_a_connection(scenario)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_an_answer_past_the_shutdowns_grace_period_is_cancelled_and_says_so() -> None:
    async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer) -> None:
        app.hold.clear()
        protocol.data_received(request(b"{}"))
        await until(lambda: app.whole, "the request to be answering")
        for task in protocol.tasks:  # what uvicorn does once the grace period is over
            task.cancel(msg="timeout graceful shutdown exceeded")
        status, headers, body = await peer.response()
        assert (status, headers[b"connection"]) == (b"HTTP/1.1 503 Service Unavailable", b"close")
        assert json.loads(body)["error_type"] == "not_ready" and app.cancelled == 1
        assert await peer.closed()

    over_a_connection(scenario)


@pytest.mark.parametrize(
    ("raw", "config"),
    [
        (request(b"{}", path=b"/v1/%63lassify"), {}),  # uvicorn's unquoting stays the one
        (request(b"{}", b"expect: 100-continue"), {}),  # uvicorn sends the 100 Continue
        (request(b"{}"), {"root_path": "/api"}),
        (request(b"{}"), {"limit_concurrency": 100}),  # uvicorn counts what it serves
    ],
    ids=["percent-encoded path", "expect 100-continue", "root path", "concurrency limit"],
)
def test_what_uvicorn_must_see_goes_the_asgi_way(raw: bytes, config: dict[str, Any]) -> None:
    async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer) -> None:
        protocol.data_received(raw)
        _, headers, body = await peer.response()
        assert (headers[b"x-way"], body) == (b"asgi", b"{}")
        assert app.whole == []

    over_a_connection(scenario, **config)


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    async def scenario(protocol: GuardedHttpProtocol, app: App, peer: Peer) -> None:
        protocol.data_received(request(b"{}"))
        assert (await peer.response())[1][b"x-way"] == b"whole"
        assert await peer.closed()  # within the timeout and a tick of its deadlines

    over_a_connection(scenario, timeout_keep_alive=1)
