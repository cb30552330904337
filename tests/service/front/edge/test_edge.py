"""The edge in memory (no server, no model): one call matches the route, then gives the request its
id, auth, body limits and admission, in order, and records what was answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import ClientDisconnect

from service.front.asgi import Message, Receive, Scope, Send
from service.front.core.errors import ErrorType, ServiceError, send_error
from service.front.edge.admission import Admission
from service.front.edge.auth import BearerAuth, Tokens, protected_access
from service.front.edge.body_limits import BodyLimits
from service.front.edge.edge import Edge, Headers
from service.front.edge.request_metrics import RequestMetrics
from service.front.edge.route_table import Match, RouteTable
from service.front.telemetry.metrics import Metrics

TOKEN = "a-token-of-sixteen-or-more"
JSON = [(b"content-type", b"application/json")]


class Cold:
    """FastAPI's place: answers 200, or 503 on the readiness probe, and notes what it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append(scope["path"])
        if scope["path"] == "/health/ready":
            await send_error(send, ErrorType.NOT_READY, "model is not loaded yet")
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"cold"})

    def openapi(self) -> dict[str, Any]:
        return {}


class Served:
    """A test edge and what its hot handler saw."""

    def __init__(self, auth: bool = False, max_in_flight: int = 8, max_body_bytes: int = 1000) -> None:
        self.metrics = Metrics(None)
        self.cold = Cold()
        self.bodies: list[bytes] = []
        self.in_flight_seen: list[int] = []
        self.admission = Admission(max_in_flight, self.metrics)
        self.fail: BaseException | None = None
        handlers = {
            name: self.handle
            for name in ("classify", "classify_batch", "predict", "predict_at_root", "infer", "version_infer")
        }
        self.edge = Edge(
            self.cold,
            RouteTable(),
            handlers,
            RequestMetrics(self.metrics),
            BodyLimits(max_body_bytes, read_timeout=5.0),
            self.admission,
            BearerAuth(Tokens([TOKEN], None)) if auth else None,
            protected_access(open_health=True, open_metrics=False),
        )

    async def handle(
        self, body: bytes, match: Match, headers: Mapping[bytes, bytes]
    ) -> tuple[bytes, Headers]:
        self.bodies.append(body)
        self.in_flight_seen.append(self.admission.in_flight)
        if self.fail is not None:
            raise self.fail
        return json.dumps(match.params).encode(), JSON

    def call(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[bytes, bytes]] = (),
        body: Sequence[bytes] = (b"",),
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        """One request; its status, headers and body."""
        chunks = list(body)
        sent: list[Message] = []

        async def receive() -> Message:
            if not chunks:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
        asyncio.run(self.edge(scope, receive, send))
        start = sent[0]
        return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])

    def whole(
        self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]] = (), body: bytes = b""
    ) -> tuple[int, dict[bytes, bytes], bytes] | None:
        """The same request answered the whole way (as the connection protocol does for a request
        that came whole), if the edge takes it so; else None."""
        given = dict(reversed(headers))  # a header sent twice counts by its first value
        match = self.edge.whole_request(method, path, given)
        if match is None:
            return None
        response = asyncio.run(self.edge.answer(method, path, match, given, body))
        return response.status, dict(response.headers), response.payload

    def sample(self, name: str, **labels: str) -> float | None:
        self.metrics.publish()
        return self.metrics.registry.get_sample_value(name, labels)


def test_a_hot_route_gets_its_body_its_parameters_and_an_id() -> None:
    served = Served()
    status, headers, body = served.call("POST", "/v2/models/m/versions/2/infer", body=[b"{", b"}"])
    assert status == 200 and json.loads(body) == {"model_name": "m", "model_version": "2"}
    assert served.bodies == [b"{}"]  # read whole, chunks joined; any content type for tensors
    assert len(headers[b"x-request-id"]) == 32
    given = served.call("POST", "/v1/classify", JSON + [(b"x-request-id", b"abc-1")], [b"{}"])[1]
    assert given[b"x-request-id"] == b"abc-1"
    forged = served.call("POST", "/v1/classify", JSON + [(b"x-request-id", b"a\nb")], [b"{}"])[1]
    assert forged[b"x-request-id"] != b"a\nb"


def test_only_api_requests_are_admitted_and_counted_in_flight() -> None:
    served = Served()
    served.call("POST", "/v1/classify", JSON, [b"{}"])
    assert served.in_flight_seen == [1]
    for path in ("/metrics", "/health/ready", "/docs"):
        served.call("GET", path)
    assert served.cold.seen == ["/metrics", "/health/ready", "/docs"]
    assert served.admission.in_flight == 0
    assert served.sample("textclf_in_flight_requests") == 0.0


def test_past_the_admission_bound_a_request_is_refused_429_without_its_handler() -> None:
    served = Served(max_in_flight=1)
    served.admission.in_flight = 1  # one request held
    status, headers, body = served.call("POST", "/v1/classify", JSON, [b"{}"])
    assert (status, headers[b"x-error-type"]) == (429, b"overloaded") and b"retry-after" in headers
    assert served.bodies == []
    assert served.call("GET", "/health/live")[0] == 200  # probes are never refused
    assert served.sample("textclf_errors_total", error_type="overloaded") == 1


def test_requests_are_labelled_by_route_template_or_other() -> None:
    served = Served()
    served.call("POST", "/v2/models/a/infer", body=[b"{}"])
    served.call("POST", "/v2/models/b/infer", body=[b"{}"])
    served.call("GET", "/v1/classify/../../etc")
    duration = "textclf_request_duration_seconds_count"
    assert served.sample(duration, route="/v2/models/{model_name}/infer", status_class="2xx") == 2
    assert served.sample(duration, route="other", status_class="2xx") == 1


def test_a_wrong_method_on_a_hot_route_is_405_from_the_edge() -> None:
    served = Served()
    status, headers, _ = served.call("GET", "/v1/classify")
    assert (status, headers[b"x-error-type"], headers[b"allow"]) == (405, b"method_not_allowed", b"POST")
    assert served.bodies == [] and served.cold.seen == []


def test_body_limits_refuse_before_the_handler() -> None:
    served = Served(max_body_bytes=10)
    text = [(b"content-type", b"text/plain")]
    assert served.call("POST", "/v1/classify", text, [b"{}"])[0] == 415
    gzip = JSON + [(b"content-encoding", b"gzip")]
    assert served.call("POST", "/v1/classify", gzip, [b"{}"])[0] == 415
    assert served.call("POST", "/v1/classify", JSON + [(b"content-length", b"11")], [b"x" * 11])[0] == 413
    assert served.call("POST", "/v1/classify", JSON, [b"x" * 6, b"x" * 6])[0] == 413  # chunked, counted
    assert served.call("POST", "/v1/classify", JSON + [(b"content-length", b"-1")], [b""])[0] == 413
    assert served.bodies == []
    assert served.sample("textclf_errors_total", error_type="payload_too_large") == 3


def test_auth_guards_the_api_and_what_is_not_left_open() -> None:
    served = Served(auth=True)
    status, headers, _ = served.call("POST", "/v1/classify", JSON, [b"{}"])
    assert (status, headers[b"www-authenticate"]) == (401, b'Bearer realm="textclf"')
    assert served.call("GET", "/v1/nothing")[0] == 401  # an unknown API path says nothing first
    assert served.call("GET", "/metrics")[0] == 401  # metrics not left open here
    assert served.call("GET", "/health/live")[0] == 200  # probes left open
    bearer = [(b"authorization", f"Bearer {TOKEN}".encode())]
    assert served.call("POST", "/v1/classify", JSON + bearer, [b"{}"])[0] == 200
    assert served.call("GET", "/metrics", bearer)[0] == 200
    assert served.bodies == [b"{}"]


def test_a_probe_routes_own_verdict_is_not_an_error_but_a_refusal_on_its_path_is() -> None:
    served = Served()
    assert served.call("GET", "/health/ready")[0] == 503
    assert served.sample("textclf_errors_total", error_type="not_ready") is None  # no series: none counted
    served = Served(auth=True)
    served.edge.protected = protected_access(open_health=False, open_metrics=False)
    assert served.call("GET", "/health/ready")[0] == 401
    assert served.sample("textclf_errors_total", error_type="unauthorized") == 1


def test_a_handlers_error_comes_from_the_error_table_and_a_bug_is_a_500() -> None:
    served = Served()
    served.fail = ServiceError(ErrorType.TEXT_TOO_LONG, "too long")
    status, headers, body = served.call("POST", "/v1/classify", JSON, [b"{}"])
    assert (status, json.loads(body)) == (422, {"error": "too long", "error_type": "text_too_long"})
    served.fail = RuntimeError("a bug, with a secret in its message")
    status, headers, body = served.call("POST", "/v1/classify", JSON, [b"{}"])
    assert (status, json.loads(body)["error_type"]) == (500, "internal_error") and b"secret" not in body
    assert b"x-request-id" in headers
    served.fail = ClientDisconnect()
    assert served.call("POST", "/v1/classify", JSON, [b"{}"])[0] == 499
    assert served.admission.in_flight == 0
    assert served.sample("textclf_errors_total", error_type="internal_error") == 1


def test_the_steps_run_in_order_auth_then_body_then_admission() -> None:
    served = Served(auth=True)
    text = [(b"content-type", b"text/plain")]
    assert served.call("POST", "/v1/classify", text, [b"{}"])[0] == 401  # not 415: auth comes first
    seen: list[int] = []
    chunks = [b"{", b"}"]

    async def receive() -> Message:  # a body in two parts: admission must not count it meanwhile
        seen.append(served.admission.in_flight)
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        pass

    bearer = [(b"authorization", f"Bearer {TOKEN}".encode())]
    scope = {"type": "http", "method": "POST", "path": "/v1/classify", "headers": JSON + bearer}
    asyncio.run(served.edge(scope, receive, send))
    assert seen == [0, 0] and served.in_flight_seen == [1]


def test_a_stray_slash_on_a_hot_route_is_sent_to_it() -> None:
    served = Served()
    status, headers, _ = served.call("POST", "/v1/classify/")
    assert (status, headers[b"location"]) == (307, b"/v1/classify")
    assert served.call("POST", "/v1/nothing/")[0] == 200  # other paths: FastAPI's to route (here, Cold)
    assert served.bodies == []


def test_the_edge_takes_whole_only_requests_it_would_not_refuse_by_their_headers() -> None:
    served = Served(auth=True, max_body_bytes=10)
    bearer = (b"authorization", f"Bearer {TOKEN}".encode())
    ok = [*JSON, bearer, (b"content-length", b"2")]
    assert served.whole("POST", "/v1/classify", ok, b"{}") is not None
    assert served.whole("POST", "/v1/classify", [*ok, (b"content-type", b"text/plain")], b"{}") is not None
    left_to_the_asgi_way = [
        ("GET", "/v1/classify", ok),  # its 405
        ("POST", "/v1/model", ok),  # not a classify route
        ("POST", "/v1/classify", [*JSON, (b"content-length", b"2")]),  # no token: its 401
        ("POST", "/v1/classify", [(b"content-type", b"text/plain"), *ok[1:]]),  # its 415
        ("POST", "/v1/classify", [*ok, (b"content-encoding", b"gzip")]),
        ("POST", "/v1/classify", [*JSON, bearer]),  # chunked: counted as it comes
        ("POST", "/v1/classify", [*ok, (b"transfer-encoding", b"chunked")]),
        ("POST", "/v1/classify", [*JSON, bearer, (b"content-length", b"11")]),  # its 413
        ("POST", "/v1/classify", [*JSON, bearer, (b"content-length", b"-1")]),
    ]
    for method, path, headers in left_to_the_asgi_way:
        assert served.whole(method, path, headers, b"{}") is None, (method, path, headers)
    assert served.bodies == [b"{}", b"{}"]


def test_a_whole_request_is_answered_and_recorded_as_the_asgi_way_does() -> None:
    headers = [(b"content-length", b"2"), (b"x-request-id", b"abc-1")]
    route = "/v2/models/{model_name}/infer"
    for fail, status in (
        (None, 200),
        (ServiceError(ErrorType.TEXT_TOO_LONG, "too long"), 422),
        (RuntimeError(), 500),
    ):
        served = Served()
        served.fail = fail
        by_asgi = served.call("POST", "/v2/models/m/infer", headers, [b"{}"])
        assert by_asgi[0] == status
        assert served.whole("POST", "/v2/models/m/infer", headers, b"{}") == by_asgi
        duration = "textclf_request_duration_seconds_count"
        assert served.sample(duration, route=route, status_class=f"{status // 100}xx") == 2
        if fail is not None:
            kind = "text_too_long" if status == 422 else "internal_error"
            assert served.sample("textclf_errors_total", error_type=kind) == 2
        assert served.in_flight_seen == [1, 1] and served.admission.in_flight == 0
    served = Served(max_in_flight=1)
    served.admission.in_flight = 1  # one request held
    whole = served.whole("POST", "/v1/classify", [*JSON, (b"content-length", b"2")], b"{}")
    assert whole is not None and (whole[0], whole[1][b"x-error-type"]) == (429, b"overloaded")
    assert served.bodies == []


def test_a_declared_length_of_any_size_is_read_as_a_number() -> None:
    served = Served(max_body_bytes=10)
    padded = [*JSON, (b"content-length", b"0" * 5000 + b"2")]  # leading zeros are allowed
    assert served.whole("POST", "/v1/classify", padded, b"{}") is not None
    assert served.call("POST", "/v1/classify", padded, [b"{}"])[0] == 200
    huge = [*JSON, (b"content-length", b"9" * 5000)]
    assert served.whole("POST", "/v1/classify", huge, b"{}") is None
    status, headers, _ = served.call("POST", "/v1/classify", huge, [b"{}"])
    assert (status, headers[b"connection"]) == (413, b"close")
