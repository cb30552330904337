"""The ASGI app uvicorn serves: every request matched once against the route table, then, inline
and in order, its id, trace span, auth, body limits and admission, and its handler: the edge's own
for the classify routes, FastAPI for the cold ones (docs, metadata, probes, metrics).

A classify request that arrived whole and passes auth and the body limits by its headers alone
(`whole_request`) is answered without ASGI: the connection protocol
(service.front.server.http_protocol) hands its body to `answer` and writes the Response."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from starlette.requests import ClientDisconnect

from service.front.asgi import Message, Receive, Scope, Send
from service.front.core.errors import (
    ERROR_TYPE_HEADER,
    STATUS,
    ErrorType,
    ServiceError,
    encode_error,
    send_error,
)
from service.front.edge.admission import Admission
from service.front.edge.auth import CHALLENGE, BearerAuth
from service.front.edge.body_limits import BodyLimits
from service.front.edge.request_ids import request_id
from service.front.edge.request_metrics import RequestMetrics
from service.front.edge.route_table import UNKNOWN_ROUTE, Access, Body, Match, Route, RouteTable
from service.logs import REQUEST_ID

if TYPE_CHECKING:
    from service.front.telemetry.tracing import Tracing

Headers = Sequence[tuple[bytes, bytes]]
# A hot route's handler: the body read within its limits, the match and the request's headers in;
# the 200's payload and headers (its content type among them) out, or a ServiceError raised.
Handler = Callable[[bytes, Match, Mapping[bytes, bytes]], Awaitable[tuple[bytes, Headers]]]
ERROR_TYPE = ERROR_TYPE_HEADER.encode()
OVERLOADED = "too many requests in flight on this server process; retry later"

log = logging.getLogger("service.errors")


class ColdRoutes(Protocol):
    """What answers the cold routes (FastAPI), and documents every route."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    def openapi(self) -> dict[str, Any]: ...


class Response(NamedTuple):
    """A whole response: its status, headers (Content-Length among them) and body; the kind of error
    it is, if it is one."""

    status: int
    headers: list[tuple[bytes, bytes]]
    payload: bytes
    error_type: bytes | None = None

    @classmethod
    def error(cls, kind: ErrorType, message: str, headers: Headers = ()) -> Response:
        """An error from the one error table."""
        all_headers, payload = encode_error(kind, message, headers=headers)
        return cls(STATUS[kind], all_headers, payload, kind.value.encode())


class Observed:
    """What every request gets whichever way it is answered: its id (in its log lines and its
    response), its span if it is API work, and, once it ends, its latency and status recorded."""

    __slots__ = ("method", "route", "extra", "span", "started", "_logged")

    def __init__(
        self, method: str, path: str, route: Route, headers: Mapping[bytes, bytes], tracing: Tracing | None
    ) -> None:
        given_id = request_id(headers.get(b"x-request-id"))
        self.method, self.route = method, route
        self.extra = [(b"x-request-id", given_id.encode())]  # on the response, whoever answers
        self._logged = REQUEST_ID.set(given_id)
        self.span = None
        if tracing is not None and route.access is Access.API:
            self.span = tracing.begin(method, path, headers)
            self.extra.append(self.span.header)
        self.started = time.perf_counter()

    def end(
        self, request_metrics: RequestMetrics, status: int, error_type: bytes | None, verdict: bool
    ) -> None:
        """The request is over: recorded (a probe's verdict is not an error served), its span ended."""
        elapsed = time.perf_counter() - self.started
        route = self.route.path
        request_metrics.record(self.method, route, status, elapsed, None if verdict else error_type)
        if self.span is not None:
            self.span.respond(status, error_type)
            self.span.end(route)
        REQUEST_ID.reset(self._logged)


class Exchange:
    """One request's `send`: it adds the request's own headers to the response and notes its status
    and error kind, for the request metrics, whichever layer answers."""

    __slots__ = ("send", "extra", "status", "error_type", "started", "verdict")

    def __init__(self, send: Send, extra: list[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.extra = extra
        self.status = 500  # if nothing is ever sent
        self.error_type: bytes | None = None
        self.started = False
        # A probe route's 503 is its verdict for Kubernetes, not an error served (a refusal is).
        self.verdict = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = status = message["status"]
            headers = message.get("headers", ())
            if status >= 400:
                self.error_type = next((v for k, v in headers if k == ERROR_TYPE), b"unknown")
            message["headers"] = [*headers, *self.extra]
        await self.send(message)


class Edge:
    """Everything a request meets before its handler, done inline in one call."""

    def __init__(
        self,
        api: ColdRoutes,
        table: RouteTable,
        handlers: Mapping[str, Handler],
        request_metrics: RequestMetrics,
        body_limits: BodyLimits,
        admission: Admission,
        auth: BearerAuth | None = None,
        protected: frozenset[Access] = frozenset(),
        tracing: Tracing | None = None,
    ) -> None:
        self.api = api  # FastAPI: the cold routes, the lifespan, and 404
        self.table = table
        self.handlers = dict(handlers)
        missing = [r.name for r in table.routes if r.hot and r.name not in self.handlers]
        assert not missing, f"hot routes without a handler: {missing}"
        self.request_metrics = request_metrics
        self.body_limits = body_limits
        self.admission = admission
        self.auth = auth
        self.protected = protected if auth is not None else frozenset()
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)  # the lifespan
            return
        match = self.table.match(scope["path"])
        route = match.route
        scope["route"], scope["path_params"] = route, match.params
        # A header sent twice counts by its first value (as the checks did before the edge).
        headers = dict(reversed(scope["headers"]))
        observed = Observed(scope["method"], scope["path"], route, headers, self.tracing)
        exchange = Exchange(send, observed.extra)
        try:
            await self._serve(scope, receive, exchange, match, headers)
        except ClientDisconnect:
            # Not a server error, and no traceback: its 499 reaches nobody but the metrics (nginx's code).
            log.info("client closed the connection before its request was read")
            await self._refuse(exchange, ErrorType.CLIENT_CLOSED_REQUEST, "client closed the connection")
        except Exception:
            if exchange.started:
                raise  # half a response: only closing the connection (uvicorn's job) can end it
            log.exception("unhandled error on %s %s", scope["method"], route.path)
            await self._refuse(exchange, ErrorType.INTERNAL, "internal server error")
        finally:
            observed.end(self.request_metrics, exchange.status, exchange.error_type, exchange.verdict)

    def whole_request(self, method: str, path: str, headers: Mapping[bytes, bytes]) -> Match | None:
        """The match of a request whose body came whole with its head, if `answer` may take it: a
        classify route with its method, auth accepting it, and a body the limits accept by its
        headers. Any other (a refusal to make, a body still arriving) goes the ASGI way."""
        match = self.table.match(path)
        route = match.route
        if not route.hot or method != route.method or not self.body_limits.accepts(route.body, headers):
            return None
        return match if self._authorized(route, headers) else None

    async def answer(
        self, method: str, path: str, match: Match, headers: Mapping[bytes, bytes], body: bytes
    ) -> Response:
        """The response to a request `whole_request` took, with its own headers; recorded as any other."""
        route = match.route
        observed = Observed(method, path, route, headers, self.tracing)
        try:
            response = await self._admitted(self.handlers[route.name], body, match, headers)
        except Exception:
            log.exception("unhandled error on %s %s", method, route.path)
            response = Response.error(ErrorType.INTERNAL, "internal server error")
        except BaseException:  # cancelled past the shutdown's grace period: the protocol answers 503
            refused = Response.error(ErrorType.NOT_READY, "shutting down")
            observed.end(self.request_metrics, refused.status, refused.error_type, False)
            raise
        observed.end(self.request_metrics, response.status, response.error_type, False)
        response.headers.extend(observed.extra)
        return response

    async def _serve(
        self, scope: Scope, receive: Receive, exchange: Exchange, match: Match, headers: dict[bytes, bytes]
    ) -> None:
        route = match.route
        if not self._authorized(route, headers):
            message = "a valid bearer token is required"
            await send_error(exchange, ErrorType.UNAUTHORIZED, message, headers=CHALLENGE)
            return
        if route.path == UNKNOWN_ROUTE and scope["path"].endswith("/"):
            # FastAPI sends a path with a stray slash to its route (307); the hot ones it never routes.
            target = scope["path"].rstrip("/")
            if self.table.match(target).route.hot:
                query = scope.get("query_string", b"")
                location = target.encode() + (b"?" + query if query else b"")
                redirect = [(b"location", location), (b"content-length", b"0")]
                await exchange({"type": "http.response.start", "status": 307, "headers": redirect})
                await exchange({"type": "http.response.body", "body": b""})
                return
        handler = None
        if route.hot:
            if scope["method"] != route.method:  # FastAPI never routes a hot route: it answers its 405
                allow = [(b"allow", route.method.encode())]
                await send_error(exchange, ErrorType.METHOD_NOT_ALLOWED, "Method Not Allowed", headers=allow)
                return
            handler = self.handlers[route.name]
        body = b""
        if handler is not None and route.body is not Body.NONE:
            # Before admission: a client still sending (or trickling) holds no slot.
            read = await self.body_limits.read(route.body, headers, receive, exchange)
            if read is None:
                return
            body = read
        if route.access is not Access.API:
            exchange.verdict = route.access is Access.PROBE
            await self.api(scope, receive, exchange)
            return
        if handler is None:
            if self.admission.full:
                await send_error(exchange, ErrorType.OVERLOADED, OVERLOADED)
                return
            self.admission.in_flight += 1
            try:
                await self.api(scope, receive, exchange)
            finally:
                self.admission.in_flight -= 1
            return
        response = await self._admitted(handler, body, match, headers)
        await exchange(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        await exchange({"type": "http.response.body", "body": response.payload})

    def _authorized(self, route: Route, headers: Mapping[bytes, bytes]) -> bool:
        """Whether auth lets this request through: an open route, or a token it accepts."""
        if route.access not in self.protected:
            return True
        assert self.auth is not None
        return self.auth.accepts(headers.get(b"authorization", b""))

    async def _admitted(
        self, handler: Handler, body: bytes, match: Match, headers: Mapping[bytes, bytes]
    ) -> Response:
        """A classify route's answer if admission takes it: its 200, or the error it raised (or 429)."""
        admission = self.admission
        if admission.full:
            return Response.error(ErrorType.OVERLOADED, OVERLOADED)
        admission.in_flight += 1
        try:
            payload, answer_headers = await handler(body, match, headers)
        except ServiceError as err:
            return Response.error(err.error_type, err.message)
        finally:
            admission.in_flight -= 1
        return Response(200, [(b"content-length", b"%d" % len(payload)), *answer_headers], payload)

    @staticmethod
    async def _refuse(exchange: Exchange, kind: ErrorType, message: str) -> None:
        if not exchange.started:
            await send_error(exchange, kind, message)
