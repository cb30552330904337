"""The front's lifespan: load the artifact, start and warm its model backend, then serve; on the way
out, drain and stop it. What it loads goes into the Runtime the routes read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from service.artifact import Artifact
from service.config import Settings
from service.front.core.cached_dispatch import Backend, CachedDispatch
from service.front.core.classify import Classify
from service.front.core.errors import ErrorType
from service.front.core.local_model import LocalModel
from service.front.core.model_pool import ModelPool
from service.front.core.result_cache import ResultCache
from service.front.runtime import Loaded, Runtime
from service.front.server.http_protocol import COUNT_REFUSAL
from service.front.server.termination import on_termination
from service.front.telemetry.metrics import PUBLISH_SECONDS, Metrics
from service.heap import freeze_start_up_heap
from service.manifest import load_artifact

if TYPE_CHECKING:
    from service.front.telemetry.tracing import Tracing

log = logging.getLogger("service")
PROCESS_SAMPLE_EVERY = 5  # publish periods
Lifespan = Callable[[Any], AbstractAsyncContextManager[dict[str, Callable[[ErrorType], None]]]]


async def _publish(metrics: Metrics, backend: Backend) -> None:
    """What this process counted, written for every process's scrapes; memory every few periods."""
    periods = 0
    while True:
        if periods % PROCESS_SAMPLE_EVERY == 0:
            metrics.sample_process(backend.pids())
        metrics.publish()
        periods += 1
        await asyncio.sleep(PUBLISH_SECONDS)


def _publish_graphs(metrics: Metrics, artifact: Artifact, backend: Backend) -> None:
    serving = backend.graphs()
    for graph in artifact.graphs:
        metrics.model_graph_workers.labels(graph=graph).set(serving.get(graph, 0))


async def start_backend(settings: Settings, artifact: Artifact, metrics: Metrics) -> Backend:
    """The model workers this process feeds (pool), or its own model (colocated), loaded and warm."""
    if settings.serving == "pool":
        pool = ModelPool(
            settings.workers_per_front(),
            artifact.labels,
            artifact.version,
            metrics,
            settings.for_model_workers(),
            queue_timeout=settings.queue_timeout_seconds,
            job_timeout=settings.job_timeout_seconds,
            shutdown_seconds=settings.graceful_shutdown_seconds,
            thresholds=artifact.thresholds,
            choose_graph=artifact.times_graphs(settings.model_graph, settings.graph_trial_seconds),
        )
        await pool.start()
        return pool
    # Imported here: a front feeding model workers never loads the model runtime (test_imports.py).
    from service.model.classifier import Classifier

    classifier = Classifier.from_artifact(
        artifact,
        threads=1,
        spinning=settings.intra_op_spinning,
        graph=settings.model_graph,
        trial_seconds=settings.graph_trial_seconds,
    )
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


def lifespan(runtime: Runtime, route_labels: list[str], tracing: Tracing | None) -> Lifespan:
    """The lifespan of an app serving `runtime`; `route_labels` are its routes' metric labels."""
    settings, metrics = runtime.settings, runtime.metrics

    # Error responses are counted by the edge; the connection protocol's refusals, made where there
    # is no response to read, through this.
    def count_refusal(kind: ErrorType) -> None:
        metrics.error(kind.value)

    @asynccontextmanager
    async def serve(app: Any) -> AsyncIterator[dict[str, Callable[[ErrorType], None]]]:
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
        dispatch = CachedDispatch(
            backend,
            cache,
            artifact.name,
            artifact.version,
            metrics,
            max_pending=settings.admitted_per_front(),
            max_wait=settings.admission_wait_seconds,
        )
        if tracing is not None:
            tracing.model = {"textclf.model.name": artifact.name, "textclf.model.version": artifact.version}
            dispatch.trace = tracing.record
        metrics.initialize(route_labels, [e.value for e in ErrorType], artifact.name, artifact.labels)
        label_mix = artifact.manifest.get("label_mix")
        if label_mix is not None:
            for label, share in label_mix.items():
                metrics.expected_label_share.labels(model=artifact.name, label=label).set(share)
        quantization = (artifact.manifest.get("quantization") or {}).get("weight_type", "none")
        metrics.model_info.labels(
            name=artifact.name, version=artifact.version, quantization=quantization
        ).set(1)
        metrics.on_publish(lambda: _publish_graphs(metrics, artifact, backend))
        _publish_graphs(metrics, artifact, backend)
        publisher = asyncio.create_task(_publish(metrics, backend))
        classify = Classify(
            dispatch, settings.max_text_chars, settings.max_batch, artifact.max_sequence_length
        )
        runtime.loaded = Loaded(artifact, classify)
        metrics.workers_ready.set(backend.ready)
        frozen = freeze_start_up_heap()
        log.info(
            "model %s %s ready on %d worker(s); %d start-up objects frozen",
            artifact.name,
            artifact.version,
            backend.ready,
            frozen,
        )

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

    return serve
