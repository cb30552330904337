"""OpenTelemetry tracing of API requests, when the standard OTEL_* variables ask for it.

One server span per API request (probes and scrapes are not traced), continuing the caller's W3C
`traceparent`/`tracestate`, with the route, status, cache hit or miss, token count and model as
attributes; a single text's miss gets its queue, tokenize and inference stages as child spans,
placed back from the reply's arrival with the times the model worker measured. The span's ids go
into the request's log lines and a `traceresponse` header. Spans leave through the SDK's batch
processor, on its own thread: a collector that is slow or down costs requests nothing, and its
spans are dropped. Imported only when tracing is on (service.front.app), so off costs nothing.

Tracing runs before auth, so nothing a stranger sends may make a span big: a span is named by its
route template (`other` for an unknown path), never the raw path, `url.path` is cut, and every
attribute value is bounded by the span limits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from service.config import TracingSettings
from service.front.core.cached_dispatch import Outcome
from service.logs import TRACE_IDS

# Of the shutdown budget, the most spent flushing spans to a collector (it may be down).
FLUSH_SECONDS = 2.0
PROPAGATED = (b"traceparent", b"tracestate")
PROPAGATOR = TraceContextTextMapPropagator()
# The longest attribute value a span keeps, in characters, unless OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT
# or OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT says otherwise. The SDK's default is no limit: a client's
# string would ride whole to the collector, which rejects a whole batch past its message size.
MAX_ATTRIBUTE_CHARS = 1024
# `url.path` is cut here whatever the limits say: every route's path is far shorter.
MAX_PATH_CHARS = 256


def span_limits() -> SpanLimits:
    """The SDK's span limits from the OTEL_* variables, with an attribute value length of
    MAX_ATTRIBUTE_CHARS where neither length variable sets one."""
    limits = SpanLimits()
    if limits.max_span_attribute_length is None:
        return SpanLimits(max_span_attribute_length=MAX_ATTRIBUTE_CHARS)
    return limits


def exporter(settings: TracingSettings) -> SpanExporter:
    """The OTLP exporter for the configured protocol; it reads its endpoint, headers and timeout
    from the OTEL_* variables itself."""
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http()


class Tracing:
    """The process's tracer provider, its spans' model attributes, and the per-text recorder."""

    def __init__(self, settings: TracingSettings, processor: SpanProcessor | None = None) -> None:
        resource = Resource.create({"service.name": settings.service_name})
        # The sampler from OTEL_TRACES_SAMPLER; shut down by the lifespan, within a bound, not at exit.
        self.provider = TracerProvider(resource=resource, span_limits=span_limits(), shutdown_on_exit=False)
        self.provider.add_span_processor(processor or BatchSpanProcessor(exporter(settings)))
        self.tracer = self.provider.get_tracer("service.front.telemetry.tracing")
        self.model: dict[str, str] = {}  # set once the model is loaded

    def begin(self, method: str, path: str, headers: Mapping[bytes, bytes]) -> RequestSpan:
        """An API request's span, current until its `end`."""
        return RequestSpan(self, method, path, headers)

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Add what the request's texts met to its span (called by service.front.core.cached_dispatch)."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        span.set_attributes(self.model)
        span.set_attribute("textclf.texts", len(outcomes))
        span.set_attribute("textclf.cache_hits", sum(o.cached for o in outcomes))
        span.set_attribute("textclf.tokens", sum(o.prediction.tokens for o in outcomes))
        if len(outcomes) != 1:
            return
        (outcome,) = outcomes
        span.set_attribute("textclf.cache", "hit" if outcome.cached else "miss")
        if outcome.cached:
            return
        # Back from now, the reply's arrival: inference ended last, tokenizing before it, the wait first.
        end = time.time_ns()
        parent = trace.set_span_in_context(span)
        t = outcome.timing
        for name, seconds in (("inference", t.inference), ("tokenize", t.tokenize), ("queue", t.queue)):
            start = end - int(seconds * 1e9)
            self.tracer.start_span(name, context=parent, start_time=start).end(end_time=end)
            end = start

    def shutdown(self) -> None:
        """Flush what is buffered, for at most FLUSH_SECONDS (a collector that is down must not hold
        the shutdown), then stop the exporter thread."""
        flusher = threading.Thread(target=self.provider.shutdown, name="trace-flush", daemon=True)
        flusher.start()
        flusher.join(FLUSH_SECONDS)


class RequestSpan:
    """One API request's server span, continuing the caller's trace, current while the request is
    served; named by its route label (service.front.edge.route_table), as metrics are."""

    __slots__ = ("span", "header", "method", "_token", "_logged")

    def __init__(self, tracing: Tracing, method: str, path: str, headers: Mapping[bytes, bytes]) -> None:
        carrier = {k.decode(): headers[k].decode("latin-1") for k in PROPAGATED if k in headers}
        parent = PROPAGATOR.extract(carrier)
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": path[:MAX_PATH_CHARS]}
        # Named by its method until it ends (the semantic conventions' name without a route).
        self.span = tracing.tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        self.method = method
        ids = self.span.get_span_context()
        trace_id, span_id = f"{ids.trace_id:032x}", f"{ids.span_id:016x}"
        self.header = (b"traceresponse", f"00-{trace_id}-{span_id}-{ids.trace_flags:02x}".encode())
        self._token = context.attach(trace.set_span_in_context(self.span, parent))
        self._logged = TRACE_IDS.set((trace_id, span_id))

    def respond(self, status: int, error_type: bytes | None) -> None:
        """The response's status, and its error kind if it is an error."""
        self.span.set_attribute("http.response.status_code", status)
        if error_type is not None:
            self.span.set_attribute("error.type", error_type.decode())
        if status >= 500:
            self.span.set_status(StatusCode.ERROR)

    def end(self, route: str) -> None:
        """The request is over: the span named by its route label, and no longer current."""
        TRACE_IDS.reset(self._logged)
        context.detach(self._token)
        self.span.set_attribute("http.route", route)
        self.span.update_name(f"{self.method} {route}")
        self.span.end()
