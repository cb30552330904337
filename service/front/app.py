"""App factory and lifespan: load the artifact, warm the model up, then report ready."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.errors import ServerErrorMiddleware

from service import NAME, VERSION
from service.artifact import Artifact, load_artifact
from service.config import Settings, load_settings
from service.front import error_responses
from service.front.admission import AdmissionControl
from service.front.asgi import ASGIApp, Receive, Scope, Send
from service.front.auth import BearerAuth, Tokens, document_bearer_auth, protected_paths
from service.front.cache import ResultCache
from service.front.connections import COUNT_REFUSAL
from service.front.docs import install_docs
from service.front.errors import ErrorType
from service.front.fast_lane import FastLane, HotRoutes
from service.front.guards import BodyGuard
from service.front.inference import Backend, Inference
from service.front.instrument import RequestMetrics
from service.front.local_model import LocalModel
from service.front.metrics import PUBLISH_SECONDS, Metrics
from service.front.pool import ModelPool
from service.front.requestid import RequestId
from service.front.routes import build_router
from service.front.runtime import Loaded, Runtime
from service.front.termination import on_termination
from service.front.unhandled import UnhandledErrors

log = logging.getLogger("service")
PROCESS_SAMPLE_EVERY = 5  # publish periods


async def _publish(metrics: Metrics, backend: Backend) -> None:
    """What this process counted, written for every process's scrapes; memory every few periods."""
    periods = 0
    while True:
        if periods % PROCESS_SAMPLE_EVERY == 0:
            metrics.sample_process(backend.pids())
        metrics.publish()
        periods += 1
        await asyncio.sleep(PUBLISH_SECONDS)


async def start_backend(settings: Settings, artifact: Artifact, metrics: Metrics) -> Backend:
    """The model workers this process feeds (pool), or its own model (colocated), loaded and warm."""
    if settings.serving == "pool":
        pool = ModelPool(
            settings.workers_per_front(),
            artifact.labels,
            artifact.version,
            metrics,
            queue_timeout=settings.queue_timeout_seconds,
            job_timeout=settings.job_timeout_seconds,
            shutdown_seconds=settings.graceful_shutdown_seconds,
        )
        await pool.start()
        return pool
    # Imported here: a front feeding model workers never loads the model runtime (test_imports.py).
    from service.model.classifier import Classifier

    classifier = Classifier.from_artifact(artifact, threads=1, spinning=settings.intra_op_spinning)
    busy = metrics.counter(metrics.model_worker_busy)
    local = LocalModel(
        classifier,
        busy,
        queue_timeout=settings.queue_timeout_seconds,
        job_timeout=settings.job_timeout_seconds,
    )
    await local.start(settings.warmup_runs)
    metrics.on_publish(lambda: metrics.workers_ready.set(local.ready))
    return local


class Api(FastAPI):
    """FastAPI without its last-resort error middleware: service.front.unhandled, outside it, answers
    what no handler took, with the request id, once."""

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack.app if isinstance(stack, ServerErrorMiddleware) else stack


class Front:
    """The ASGI app uvicorn serves: the middleware stack, over the fast lane and `api`, which
    answers the rest and documents every route."""

    def __init__(self, stack: ASGIApp, api: FastAPI) -> None:
        self.stack = stack
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stack(scope, receive, send)


def create_app(settings: Settings | None = None) -> Front:
    """Build the ASGI app; nothing heavy happens until the lifespan starts."""
    settings = settings or load_settings()
    metrics = Metrics(settings.metrics_dir)
    runtime = Runtime(settings, metrics)
    router = build_router(runtime)
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    route_paths = [r.path for r in routes]
    tracing = None
    if settings.tracing.enabled:
        from service.front.tracing import Tracing  # imported only when on: off loads no OpenTelemetry

        tracing = Tracing(settings.tracing)

    # Error responses are counted from their headers (service.front.instrument); the connection
    # protocol's refusals, made where there is no response to read, through this.
    def count_refusal(kind: ErrorType) -> None:
        metrics.error(kind.value)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Callable[[ErrorType], None]]]:
        # A replaced process must not leave its live gauges (cache size, readiness) behind.
        metrics.forget_dead_processes()
        artifact = load_artifact(settings.model_dir)
        backend = await start_backend(settings, artifact, metrics)
        cache = ResultCache(
            settings.cache_entries,
            settings.cache_max_bytes,
            settings.cache_ttl_seconds,
            on_evict=metrics.cache_evictions.inc,
        )
        admitted = settings.max_in_flight * settings.workers_per_front()
        inference = Inference(backend, cache, artifact.version, metrics, max_pending=admitted)
        if tracing is not None:
            tracing.model = {"textclf.model.name": artifact.name, "textclf.model.version": artifact.version}
            inference.observe = tracing.record
        metrics.initialize(route_paths, [e.value for e in ErrorType], artifact.labels)
        quantization = (artifact.manifest.quantization or {}).get("weight_type", "none")
        metrics.model_info.labels(
            name=artifact.name, version=artifact.version, quantization=quantization
        ).set(1)
        publisher = asyncio.create_task(_publish(metrics, backend))
        runtime.loaded = Loaded(artifact, inference)
        metrics.workers_ready.set(backend.ready)
        log.info("model %s %s ready on %d worker(s)", artifact.name, artifact.version, backend.ready)

        def stop() -> None:
            runtime.stopping = True
            backend.begin_shutdown(settings.graceful_shutdown_seconds)

        try:
            with on_termination(stop):
                yield {COUNT_REFUSAL: count_refusal}  # the lifespan state, shared with the server's protocol
        finally:
            runtime.loaded = None
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            await backend.close()
            metrics.workers_ready.set(0)
            metrics.publish()  # the last requests' counts
            if tracing is not None:
                tracing.shutdown()

    app = Api(
        title=NAME,
        summary="Low-latency CPU text classification (distilled BERT, dynamic int8 ONNX).",
        version=VERSION,
        lifespan=lifespan,
        # Prometheus metrics are ours; FastAPI's built-in OpenTelemetry checks cost time per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # served by service.front.docs, without a CDN
        redoc_url=None,
    )
    install_docs(app)
    error_responses.install(app)
    app.include_router(router)

    # The stack uvicorn serves. Innermost, past every check: a classify request goes to the fast
    # lane, anything else to FastAPI, whose own per-request layers only the cold routes pay for.
    hot = HotRoutes(runtime)
    stack: ASGIApp = FastLane(app, handlers=hot.handlers(), infer=hot.infer)
    # Admission after the body is read: a client still sending (or trickling) holds no slot.
    admitted = settings.max_in_flight * settings.workers_per_front()
    stack = AdmissionControl(stack, max_in_flight=admitted, metrics=metrics)
    stack = BodyGuard(
        stack,
        body_paths=[r.path for r in routes if "POST" in (r.methods or ())],
        max_body_bytes=settings.max_body_bytes,
        read_timeout=settings.request_read_timeout_seconds,
    )
    if settings.auth_required():
        tokens = Tokens(settings.fixed_tokens(), settings.api_tokens_file)
        protected = protected_paths(settings.open_health, settings.open_metrics)
        # Before admission: a request without a token must not take an in-flight slot.
        stack = BearerAuth(stack, tokens=tokens, protected=protected)
        document_bearer_auth(app, protected)
    # Outside auth, admission and the body guard, so an error in any of them is answered too.
    stack = UnhandledErrors(stack)
    # Outermost, so rejected requests are timed and counted too, and every log line has its id.
    stack = RequestMetrics(stack, metrics=metrics, routes=route_paths, access_log=settings.access_log)
    if tracing is not None:
        from service.front.tracing import TraceRequests

        # Around everything the request meets, inside the request id that its span and logs carry.
        stack = TraceRequests(stack, tracing, routes=route_paths)
    return Front(RequestId(stack), app)
