"""OpenTelemetry tracing against a real OTLP/HTTP receiver: the spans of real requests, decoded with
the official opentelemetry-proto package, continue the caller's trace; off, nothing changes."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from load_tests.otlp_sink import otlp_sink
from load_tests.server import free_port, running_service
from service.config import TracingSettings
from service.front.telemetry.tracing import Tracing
from tests.conftest import Built
from tests.support.waiting import wait_until

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
# The documented bounds: an attribute value's length by default, and `url.path`'s in any case.
ATTRIBUTE_CHARS = 1024
PATH_CHARS = 256


@dataclass
class Received:
    """What a collector was sent: every span, with its service name."""

    spans: list[Span] = field(default_factory=list)
    services: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                for attribute in resource_spans.resource.attributes:
                    if attribute.key == "service.name":
                        self.services.add(attribute.value.string_value)
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)

    def named(self, name: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.name == name]

    def children(self, parent: Span) -> dict[str, Span]:
        with self.lock:
            return {s.name: s for s in self.spans if s.parent_span_id == parent.span_id}


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP collector on loopback (load_tests.otlp_sink), decoding what it is sent."""
    received = Received()
    with otlp_sink(lambda body: received.add(ExportTraceServiceRequest.FromString(body))) as url:
        yield url, received


@contextmanager
def otlp_grpc_receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/gRPC collector on loopback (grpcio and the official service definition)."""
    received = Received()

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:  # noqa: N802
            received.add(request)
            return ExportTraceServiceResponse()

    server = grpc.server(ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)


def attributes(span: Span) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        values[a.key] = getattr(a.value, kind) if kind else None
    return values


def traced_env(endpoint: str) -> dict[str, str]:
    # Exported within 50 ms of ending, so the test does not wait for the default 5 s schedule.
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "textclf-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "TEXTCLF_ACCESS_LOG": "true",
        "TEXTCLF_LOG_FORMAT": "json",
    }


def test_requests_are_spans_continuing_the_callers_trace(small_model: Built, tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    with otlp_receiver() as (endpoint, received):
        with running_service(small_model.artifact, log, workers=1, env=traced_env(endpoint)) as svc:
            caller = {"traceparent": TRACEPARENT, "x-request-id": "traced-1"}
            text = f"a text nobody sent before {os.urandom(4).hex()}"
            miss = httpx.post(svc.url + "/v1/classify", json={"text": text}, headers=caller, timeout=30)
            hit = httpx.post(svc.url + "/v1/classify", json={"text": text}, timeout=30)
            batch = httpx.post(svc.url + "/v1/classify/batch", json={"texts": [text, "b", "c"]}, timeout=30)
            refused = httpx.post(svc.url + "/v1/classify", json={"txt": text}, timeout=30)
            assert httpx.get(svc.url + "/health/live", timeout=10).status_code == 200
            assert [r.status_code for r in (miss, hit, batch, refused)] == [200, 200, 200, 422]
            wait_until(
                lambda: (
                    len(received.named("POST /v1/classify")) == 3
                    and bool(received.named("POST /v1/classify/batch"))
                ),
                "the four requests' spans",
            )
            wait_until(lambda: len(received.spans) >= 3 + 1 + 3, "the miss's three stages")
    assert received.services == {"textclf-under-test"}
    assert not received.named("GET /health/live")  # probes are not traced
    version = small_model.manifest["version"]

    # The caller's trace is continued: its trace id, the caller's span as parent, in the answer too.
    [server] = [s for s in received.named("POST /v1/classify") if s.trace_id.hex() == TRACE_ID]
    assert server.parent_span_id.hex() == PARENT_ID and server.kind == Span.SPAN_KIND_SERVER
    assert miss.headers["traceresponse"] == f"00-{TRACE_ID}-{server.span_id.hex()}-01"
    assert attributes(server) | {"textclf.tokens": None} == {
        "http.request.method": "POST",
        "http.route": "/v1/classify",
        "url.path": "/v1/classify",
        "http.response.status_code": 200,
        "textclf.model.name": small_model.manifest["name"],
        "textclf.model.version": version,
        "textclf.texts": 1,
        "textclf.cache_hits": 0,
        "textclf.cache": "miss",
        "textclf.tokens": None,
    }
    assert attributes(server)["textclf.tokens"] == miss.json()["tokens"]
    # Its stages, as child spans in order and inside it, with the times the worker reported.
    stages = received.children(server)
    assert set(stages) == {"queue", "tokenize", "inference"}
    queue, tokenize, inference = stages["queue"], stages["tokenize"], stages["inference"]
    assert server.start_time_unix_nano <= queue.start_time_unix_nano
    assert queue.end_time_unix_nano == tokenize.start_time_unix_nano
    assert tokenize.end_time_unix_nano == inference.start_time_unix_nano
    assert inference.end_time_unix_nano <= server.end_time_unix_nano
    reported_ms = float(miss.headers["x-inference-time"])
    assert (inference.end_time_unix_nano - inference.start_time_unix_nano) / 1e6 == pytest.approx(
        reported_ms, abs=0.001
    )

    # A hit: a new trace (no traceparent sent), no stages.
    [cached] = [s for s in received.named("POST /v1/classify") if attributes(s).get("textclf.cache") == "hit"]
    assert cached.trace_id.hex() != TRACE_ID and not cached.parent_span_id
    assert not received.children(cached)
    # A batch: one span with the counts.
    [many] = received.named("POST /v1/classify/batch")
    assert (attributes(many)["textclf.texts"], attributes(many)["textclf.cache_hits"]) == (3, 1)
    # A client's mistake: its status and error type, not an error of the server.
    [bad] = [
        s for s in received.named("POST /v1/classify") if attributes(s)["http.response.status_code"] == 422
    ]
    assert attributes(bad)["error.type"] == refused.json()["error_type"]
    assert bad.status.code != bad.status.STATUS_CODE_ERROR

    # The request's log lines carry its trace and span ids.
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "traced-1"]
    assert access and all(
        (line["trace_id"], line["span_id"]) == (TRACE_ID, server.span_id.hex()) for line in access
    )


def test_spans_reach_a_grpc_collector_too(small_model: Built, tmp_path: Path) -> None:
    with otlp_grpc_receiver() as (endpoint, received):
        env = traced_env(endpoint) | {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }
        with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
            answer = httpx.post(
                svc.url + "/predict", json={"inputs": "over grpc"}, headers={"traceparent": TRACEPARENT}
            )
            assert answer.status_code == 200
            wait_until(lambda: bool(received.named("POST /predict")), "the /predict span")
    [server] = received.named("POST /predict")
    assert (server.trace_id.hex(), server.parent_span_id.hex()) == (TRACE_ID, PARENT_ID)
    assert attributes(server)["textclf.texts"] == 1


def test_a_collector_that_is_down_costs_requests_nothing(small_model: Built, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = traced_env(down) | {"OTEL_EXPORTER_OTLP_TIMEOUT": "1"}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        with httpx.Client(timeout=30) as client:
            statuses = [
                client.post(
                    svc.url + "/v1/classify", json={"text": f"t {i}"}, headers={"traceparent": TRACEPARENT}
                )
                for i in range(40)
            ]
        assert {r.status_code for r in statuses} == {200}
        assert all(r.headers["traceresponse"].startswith(f"00-{TRACE_ID}-") for r in statuses)
        assert svc.stop() == 0  # the unsent spans do not hold the shutdown


def test_tracing_is_off_unless_asked_for(small_model: Built, tmp_path: Path) -> None:
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1) as svc:
        answer = httpx.post(
            svc.url + "/v1/classify", json={"text": "untraced"}, headers={"traceparent": TRACEPARENT}
        )
        assert answer.status_code == 200 and "traceresponse" not in answer.headers


@pytest.mark.parametrize(
    ("environ", "enabled", "protocol"),
    [
        ({}, False, "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True, "http/protobuf"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            True,
            "grpc",
        ),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True, "http/protobuf"),
        (
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            False,
            "http/protobuf",
        ),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False, "http/protobuf"),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            False,
            "http/protobuf",
        ),
    ],
)
def test_the_standard_variables_turn_tracing_on(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], enabled: bool, protocol: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = TracingSettings()
    assert (settings.enabled, settings.protocol) == (enabled, protocol)


def test_long_paths_make_small_spans_named_by_their_route(small_model: Built, tmp_path: Path) -> None:
    # Just under the request line's 8 KiB bound (service.config), so both reach the app.
    unknown = "/v1/" + "u" * 7_900
    infer = "/v2/models/" + "m" * 7_800 + "/infer"  # a known route's shape, with a long model name
    body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}]}
    with otlp_receiver() as (endpoint, received):
        with running_service(
            small_model.artifact, tmp_path / "service.log", workers=1, env=traced_env(endpoint)
        ) as svc:
            lost = httpx.get(svc.url + unknown, timeout=30)
            other_model = httpx.post(svc.url + infer, json=body, timeout=30)
            assert (lost.status_code, other_model.status_code) == (404, 404)
            wait_until(lambda: len(received.spans) >= 2, "the two requests' spans")
    spans = {s.name: attributes(s) for s in received.spans}
    assert set(spans) == {"GET other", "POST /v2/models/{model_name}/infer"}
    unrouted, routed = spans["GET other"], spans["POST /v2/models/{model_name}/infer"]
    assert (unrouted["http.route"], unrouted["url.path"]) == ("other", unknown[:PATH_CHARS])
    assert (routed["http.route"], routed["url.path"]) == ("/v2/models/{model_name}/infer", infer[:PATH_CHARS])
    assert all(len(v) <= ATTRIBUTE_CHARS for a in spans.values() for v in a.values() if isinstance(v, str))


@pytest.mark.parametrize(
    ("environ", "kept"),
    [
        ({}, ATTRIBUTE_CHARS),
        ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100"}, 100),
        ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "50"}, 50),
    ],
)
def test_attribute_values_are_cut_at_the_limit(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], kept: int
) -> None:
    for name in ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    finished = InMemorySpanExporter()
    tracing = Tracing(TracingSettings(), SimpleSpanProcessor(finished))
    tracing.tracer.start_span("long", attributes={"sent": "x" * 5_000}).end()
    tracing.shutdown()
    [span] = finished.get_finished_spans()
    assert span.attributes is not None and len(str(span.attributes["sent"])) == kept


def test_a_malformed_tracestate_is_logged_once_without_its_value(small_model: Built, tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    member = f"caller-bytes-{uuid.uuid4().hex} is no member"  # the SDK warned quoting it, each time
    headers = {"traceparent": TRACEPARENT, "tracestate": f"vendor=fine,{member}"}
    with otlp_receiver() as (endpoint, _):
        with running_service(small_model.artifact, log, workers=1, env=traced_env(endpoint)) as svc:
            with httpx.Client(timeout=30) as client:
                answers = [
                    client.post(svc.url + "/v1/classify", json={"text": f"state {i}"}, headers=headers)
                    for i in range(5)
                ]
    assert {a.status_code for a in answers} == {200}
    assert all(a.headers["traceresponse"].startswith(f"00-{TRACE_ID}-") for a in answers)  # still continued
    text = log.read_text()
    assert member not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    warned = [line for line in lines if line["logger"].startswith("opentelemetry")]
    assert [line["level"] for line in warned] == ["warning"]  # the first, without the value
