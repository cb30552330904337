"""uvicorn's httptools protocol with the bounds it lacks: a deadline for a request's headers, limits
on their size, and a cap on the connections one HTTP process keeps open; each response written
in one syscall; and a classify request that came whole answered without uvicorn's ASGI cycle
(service.front.server.whole_requests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.front.asgi import Receive, Scope, Send
from service.front.core.errors import STATUS, ErrorType, encode_error, send_error
from service.front.deadlines import Deadlines
from service.front.server.head_limits import HeadLimits, HeadRefusal, HeadScanner
from service.front.server.whole_requests import AnswersWhole, WholeRequest, http_response, response_bytes
from service.front.server.write_coalescing import CoalescedWrites

# Lifespan state key (service.front.app sets it): how refusals made below the app get counted.
COUNT_REFUSAL = "textclf.count_refusal"
CountRefusal = Callable[[ErrorType], None]
# After refusing a head: how much more of it is read and dropped, and for how long, so that a client
# still sending reads the answer rather than a reset (nginx's lingering close), then the connection
# is closed whatever the client does.
LINGER_BYTES = 64 * 1024
LINGER_SECONDS = 1.0


class GuardedHttpProtocol(HttpToolsProtocol):
    """One connection. Its request headers must be complete within `header_timeout` seconds (from
    the connection's opening, or from the first byte of a later request), else 408 and the
    connection closed (just closed if nothing was sent). Beyond `max_connections` open at once in
    this process, a new connection's requests are answered 503 `too_many_connections` and it is
    closed. A request line or header line, or a whole head, past `head_limits` is answered 414
    `uri_too_long` or 431 `headers_too_large` as soon as its bytes pass the limit, and the
    connection closed.

    uvicorn only times the idle wait between requests (keep-alive): a client that opens a
    connection and then trickles, or never finishes, its headers holds the socket and its memory
    for ever. The body's own deadline is service.front.edge.body_limits'. The idle wait's deadline
    is here too, kept like the heads' (service.front.deadlines) rather than by a loop timer.

    A classify request whose body comes in the read that ends its head, and that the edge takes
    whole, is answered by the edge without an ASGI cycle (service.front.server.whole_requests).
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float,
        max_connections: int,
        head_limits: HeadLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self._head = HeadScanner(head_limits)
        self._linger: asyncio.TimerHandle | None = None  # set once a head is refused
        self._lingered = 0
        # Bytes read since the open chunk's header with none of its data: the last chunk's
        # trailer fields, which the parser builds like header values (None: no such chunk).
        self._trailers: int | None = None
        self._deadlines = shared_deadlines("head", header_timeout)
        # uvicorn arms a loop timer for the idle wait after every response (~2 µs with its cancel).
        self._idle = shared_deadlines("idle", self.timeout_keep_alive)
        self._timed = False  # a head deadline is set
        self._reading_headers = False
        self._edge: AnswersWhole | None = None  # what answers whole requests: the app, if it is the edge

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # What uvicorn writes goes through it; its flow control keeps the socket's own transport.
        self.transport = CoalescedWrites(transport, self.loop)  # type: ignore[assignment]
        if len(self.connections) > self.max_connections:
            self.app = refuse_connection  # answered through uvicorn, so the client reads a response
        elif isinstance(self.app, AnswersWhole):
            self._edge = self.app
        self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self._idle.clear(self)
        if self._linger is not None:
            self._linger.cancel()
        if isinstance(self.cycle, WholeRequest):
            self.cycle = None  # its answer sees the transport closing
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._linger is not None:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.close()
            return
        head = self._head
        if head.reading:
            refusal = head.feed(data)
            if refusal is not None:
                self._refuse(refusal)
                return
        super().data_received(data)
        cycle = self.cycle
        if isinstance(cycle, WholeRequest) and not cycle.body_read and not self.transport.is_closing():
            self._hand_to_uvicorn(cycle)
        if self._reading_headers and not head.reading:
            # The parser is in a head the scanner does not follow (a pipelined request that began
            # in this chunk): counted from the next chunk on, so at most one chunk goes unseen.
            head.expect_head()
        if self._trailers is not None:
            self._trailers += len(data)
            if self._trailers > head.limits.head:
                message = f"trailer fields over {head.limits.head} bytes; connection closed"
                self._refuse(HeadRefusal(ErrorType.HEADERS_TOO_LARGE, message))

    def on_message_complete(self) -> None:
        self._head.expect_head()
        self._trailers = None
        cycle = self.cycle
        if isinstance(cycle, WholeRequest) and not cycle.body_read:
            cycle.body_read = True
            self._start_answering(cycle)
        else:  # uvicorn's request, or one uvicorn left where it was (an upgrade)
            super().on_message_complete()

    # Called by the parser for chunked bodies only.
    def on_chunk_header(self) -> None:
        self._trailers = 0

    def on_chunk_complete(self) -> None:
        self._trailers = None

    def on_body(self, body: bytes) -> None:
        self._trailers = None
        cycle = self.cycle
        if isinstance(cycle, WholeRequest) and not cycle.body_read:
            cycle.chunks.append(body)
        else:
            super().on_body(body)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        if not self._timed:  # a later request on a kept-alive connection
            self._start_deadline()

    def on_response_complete(self) -> None:
        """uvicorn's, but the idle wait's deadline is one of `_idle`'s."""
        self.transport.flush()  # type: ignore[attr-defined]  # the head and body in one write
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle.set(self, self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls it on every read and when the connection is lost: no loop timer to cancel.
        self._idle.clear(self)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._head.reading = False
        self._cancel_deadline()
        whole = self._whole_request()
        if whole is None:
            super().on_headers_complete()
        else:
            self.cycle = whole  # type: ignore[assignment]  # where uvicorn's pipelining and shutdown look

    def _whole_request(self) -> WholeRequest | None:
        """This request, if the edge may answer it whole: nothing before it on the connection still
        unanswered, no upgrade, no 100 Continue to send, a plain path, and the edge takes it."""
        edge, cycle, parser = self._edge, self.cycle, self.parser
        if edge is None or self.pipeline or (cycle is not None and not cycle.response_complete):
            return None
        if self.expect_100_continue or self.root_path or self.limit_concurrency is not None:
            return None
        if parser.should_upgrade():
            return None
        raw_path = httptools.parse_url(self.url).path
        if b"%" in raw_path:
            return None  # uvicorn's unquoting stays the one
        method, path = parser.get_method().decode("ascii"), raw_path.decode("ascii")
        # A header sent twice counts by its first value, as on the ASGI way.
        headers = dict(reversed(self.headers))
        match = edge.whole_request(method, path, headers)
        if match is None:
            return None
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        return WholeRequest(method, path, match, headers, keep_alive)

    def _hand_to_uvicorn(self, whole: WholeRequest) -> None:
        """A request whose body did not come with its head goes the ASGI way, with the body so far:
        its deadline and a client leaving halfway are the edge's body limits' to answer."""
        self.cycle = None  # type: ignore[assignment]  # nothing before it was unanswered
        super().on_headers_complete()
        for chunk in whole.chunks:
            super().on_body(chunk)

    async def _answer(self, whole: WholeRequest) -> None:
        assert self._edge is not None
        last_words = (ErrorType.INTERNAL, "internal server error")  # if a bug stops it
        try:
            response = await self._edge.answer(
                whole.method, whole.path, whole.match, whole.headers, whole.body()
            )
            if self.flow.write_paused and not self.transport.is_closing():
                await self.flow.drain()  # the client reads no answers: wait, as uvicorn does
            if self.transport.is_closing():
                return  # the client left: the answer is recorded, and no one reads it
            keep_alive = whole.keep_alive  # cleared by a graceful shutdown meanwhile
            answer = response_bytes(response, self.server_state.default_headers, keep_alive)
            self.transport.send_now(answer)  # type: ignore[attr-defined]
            whole.response_complete = True
            if not keep_alive:
                self.transport.close()
            self.on_response_complete()
        except asyncio.CancelledError:  # the graceful shutdown's grace period is over
            last_words = (ErrorType.NOT_READY, "the server is shutting down; retry")
            raise
        finally:
            if not whole.response_complete:  # the client must not wait for an answer that never comes
                if not self.transport.is_closing():
                    self.transport.write(raw_response(*last_words))
                self.transport.close()

    def _start_answering(self, whole: WholeRequest) -> None:
        """Answer in a task uvicorn's graceful shutdown waits for, as it waits for its own."""
        task = self.loop.create_task(self._answer(whole))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _refuse(self, refusal: HeadRefusal) -> None:
        """Refuse a head (or trailer fields) past its limits: answer at once and half-close; what the
        client still sends is dropped (see LINGER_BYTES).
        While an earlier request's answer is still being written, the connection is just closed."""
        self._cancel_deadline()
        count_refusal(self.app_state, refusal.error_type)
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()
            return
        self.transport.write(raw_response(refusal.error_type, refusal.message))
        self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _start_deadline(self) -> None:
        self._deadlines.set(self, self.header_timeout, self._headers_timed_out)
        self._timed = True

    def _cancel_deadline(self) -> None:
        if self._timed:
            self._deadlines.clear(self)
            self._timed = False

    def _headers_timed_out(self) -> None:
        self._timed = False
        if self.transport.is_closing():
            return
        unanswered = self.cycle is not None and not self.cycle.response_complete
        if self._reading_headers and not unanswered:  # else it would read as the earlier one's answer
            count_refusal(self.app_state, ErrorType.REQUEST_TIMEOUT)
            message = f"request headers not received within {self.header_timeout:g} s"
            self.transport.write(raw_response(ErrorType.REQUEST_TIMEOUT, message))
        self.transport.close()


_DEADLINES: dict[tuple[str, float], Deadlines] = {}


def shared_deadlines(wait: str, timeout: float) -> Deadlines:
    """The deadlines of one kind of wait that every connection of this process shares."""
    deadlines = _DEADLINES.get((wait, timeout))
    if deadlines is None:
        deadlines = _DEADLINES[wait, timeout] = Deadlines.for_timeout(timeout)
    return deadlines


def count_refusal(state: Mapping[str, Any], error_type: ErrorType) -> None:
    """Count a refusal with the counter the app put in its lifespan state (none before start-up)."""
    count: CountRefusal | None = state.get(COUNT_REFUSAL)
    if count is not None:
        count(error_type)


def raw_response(error_type: ErrorType, message: str) -> bytes:
    """A whole HTTP/1.1 error response, for when there is no request for uvicorn to answer."""
    headers, payload = encode_error(error_type, message, close=True)
    return http_response(STATUS[error_type], headers, payload)


async def refuse_connection(scope: Scope, receive: Receive, send: Send) -> None:
    """The app of a connection over the cap: every request is refused and the connection closed."""
    count_refusal(scope.get("state", {}), ErrorType.TOO_MANY_CONNECTIONS)
    message = "too many open connections to this server; retry later"
    await send_error(send, ErrorType.TOO_MANY_CONNECTIONS, message, close=True)
