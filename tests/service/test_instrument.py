from __future__ import annotations

import asyncio
from types import SimpleNamespace

from service.front.admission import AdmissionControl
from service.front.asgi import Message, Receive, Scope, Send
from service.front.errors import ErrorType, send_error
from service.front.instrument import RequestMetrics
from service.front.metrics import Metrics


def in_flight(metrics: Metrics) -> float:
    """The in-flight gauge as a scrape now would read it."""
    metrics.publish()
    value = metrics.registry.get_sample_value("textclf_in_flight_requests")
    assert value is not None
    return value


def _in_flight_during(metrics: Metrics, path: str, routes: tuple[str, ...] = ()) -> float:
    """Run one request through the request metrics and admission; return the in-flight gauge seen
    while it ran."""
    seen: list[float] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(in_flight(metrics))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    scope = {"type": "http", "path": path, "method": "GET", "headers": []}
    stack = RequestMetrics(AdmissionControl(app, 8, metrics), metrics, routes)
    asyncio.run(stack(scope, receive, send))
    return seen[0]


def test_only_api_requests_count_as_in_flight() -> None:
    metrics = Metrics(None)
    assert _in_flight_during(metrics, "/v1/classify") == 1.0
    # Probes and scrapes are not load; a scrape would otherwise always see itself.
    assert _in_flight_during(metrics, "/metrics") == 0.0
    assert _in_flight_during(metrics, "/health/ready") == 0.0
    assert in_flight(metrics) == 0.0
    # Every request is still timed.
    assert 'route="other",status_class="2xx"} 3.0' in metrics.render().decode()


def test_a_request_answered_before_routing_is_counted_under_its_route() -> None:
    # Middleware refusals (429, 413, 408, 499) never reach routing, so the scope has no route.
    metrics = Metrics(None)
    _in_flight_during(metrics, "/v1/classify", routes=("/v1/classify",))
    _in_flight_during(metrics, "/v1/classify/../../etc", routes=("/v1/classify",))
    text = metrics.render().decode()
    assert 'route="/v1/classify",status_class="2xx"} 1.0' in text
    assert 'route="other",status_class="2xx"} 1.0' in text


def test_every_error_response_is_counted_by_the_kind_its_header_names() -> None:
    metrics = Metrics(None)

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await send_error(send, ErrorType.OVERLOADED, "busy")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    scope = {"type": "http", "path": "/v1/classify", "method": "POST", "headers": []}
    for _ in range(2):
        asyncio.run(RequestMetrics(refuse, metrics)(scope, receive, send))
    metrics.publish()
    assert metrics.registry.get_sample_value("textclf_errors_total", {"error_type": "overloaded"}) == 2


def test_a_probe_routes_own_verdict_is_not_an_error_but_a_refusal_on_its_path_is() -> None:
    metrics = Metrics(None)

    async def answer_503(scope: Scope, receive: Receive, send: Send) -> None:
        await send_error(send, ErrorType.NOT_READY, "model is not loaded yet")

    async def route_then_answer(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = SimpleNamespace(path=scope["path"])  # as FastAPI's routing sets it
        await answer_503(scope, receive, send)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    for app in (route_then_answer, answer_503):  # the readiness route's 503; one refused before routing
        scope = {"type": "http", "path": "/health/ready", "method": "GET", "headers": []}
        asyncio.run(RequestMetrics(app, metrics)(scope, receive, send))
    metrics.publish()
    assert metrics.registry.get_sample_value("textclf_errors_total", {"error_type": "not_ready"}) == 1
