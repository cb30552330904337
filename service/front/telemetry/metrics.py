"""Prometheus metrics, correct across HTTP processes (prometheus_client multiprocess mode).

In multiprocess mode every HTTP process writes its samples to files in PROMETHEUS_MULTIPROC_DIR (set
and emptied by the launcher before they start) and a scrape of any of them aggregates them all.
What changes on every request is counted in process memory (service.front.telemetry.metric_buffers) and gauges
like the queue depth are read when published: `publish()` writes both, every PUBLISH_SECONDS
and before each scrape this process answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from service.front.telemetry.metric_buffers import CounterBuffer, HistogramBuffer

PREFIX = "textclf"
# How old another process's figures may be in a scrape: its buffered counts wait this long at most.
PUBLISH_SECONDS = 1.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def geometric_buckets(start: float, factor: float, stop: float) -> tuple[float, ...]:
    """Bucket bounds start, start*factor, ... up to stop: even resolution on a log scale."""
    bounds = [start]
    while bounds[-1] * factor <= stop:
        bounds.append(round(bounds[-1] * factor, 9))
    return tuple(bounds)


# 0.1 ms to ~1.6 s in x1.5 steps: resolves a p99 of a few ms (the client's defaults start at 5 ms).
LATENCY_BUCKETS = geometric_buckets(0.0001, 1.5, 2.0)
TOKEN_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


class Metrics:
    """Every metric the service exports, registered on its own registry (never the global one)."""

    def __init__(self, multiprocess_dir: Path | None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self._buffers: list[CounterBuffer | HistogramBuffer] = []
        self._samplers: list[Callable[[], None]] = []
        self._errors: dict[str, CounterBuffer] = {}
        # In multiprocess mode the values live in files and are read by MultiProcessCollector at
        # scrape time; registering them too would report this process's values twice.
        registry = None if multiprocess_dir else self.registry

        def name(n: str) -> str:
            return f"{PREFIX}_{n}"

        self.request_duration = Histogram(
            name("request_duration_seconds"),
            "HTTP request latency, server side.",
            ["route", "status_class"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.stage_duration = Histogram(
            name("stage_duration_seconds"),
            "Time per stage of a computed prediction (cache misses).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.cache_lookups = Counter(
            name("cache_lookups_total"), "Result cache lookups by result.", ["result"], registry=registry
        )
        self.cache_evictions = Counter(
            name("cache_evictions_total"),
            "Entries evicted from the result cache to respect its bounds.",
            registry=registry,
        )
        self.cache_entries = Gauge(
            name("cache_entries"),
            "Entries in the result caches of live HTTP processes.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.cache_bytes = Gauge(
            name("cache_bytes"),
            "Approximate bytes held by the result caches of live HTTP processes.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.input_tokens = Histogram(
            name("input_tokens"),
            "Tokens per text fed to the model (after truncation).",
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.truncations = Counter(
            name("truncations_total"), "Texts cut at the model's maximum sequence length.", registry=registry
        )
        self.in_flight = Gauge(
            name("in_flight_requests"),
            "API requests admitted and not answered yet by live HTTP processes; probes and scrapes excluded.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.errors = Counter(
            name("errors_total"), "Error responses by error type.", ["error_type"], registry=registry
        )
        self.predictions = Counter(
            name("predictions_total"),
            "Texts classified, by model, label and source.",
            ["model", "label", "cached"],
            registry=registry,
        )
        # What the served mix of labels is compared with (deploy/prometheus/rules.yml: the drift alert).
        self.expected_label_share = Gauge(
            name("expected_label_share"),
            "Each label's share of the model's validation split (its manifest's label_mix).",
            ["model", "label"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.model_info = Gauge(
            name("model_info"),
            "The served model; value 1.",
            ["name", "version", "quantization"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.model_graph_workers = Gauge(
            name("model_graph_workers"),
            "Model workers ready, by the int8 graph of the model each serves (the one timed fastest).",
            ["graph"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.workers_ready = Gauge(
            name("workers_ready"),
            "Model workers with the model loaded and warmed up.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.model_worker_busy = Counter(
            name("model_worker_busy_seconds"),
            "Seconds model workers spent on jobs, receive to reply (rate / workers = utilization).",
            registry=registry,
        )
        self.queue_depth = Gauge(
            name("queue_depth"),
            "Cache misses waiting for an idle model worker, summed over live fronts.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.model_worker_restarts = Counter(
            name("model_worker_restarts_total"),
            "Model workers replaced: exited, killed past the job or hello timeout, refused (another model), "
            "or distrusted (a reply for another job, or one no model computes).",
            registry=registry,
        )
        self.job_retries = Counter(
            name("model_job_retries_total"),
            "Jobs run again on another model worker because theirs exited or hung while running them.",
            registry=registry,
        )
        self.job_timeouts = Counter(
            name("model_job_timeouts_total"),
            "Jobs that ran past the job timeout; the worker running each was killed and replaced.",
            registry=registry,
        )
        # The collector adds the pid of the HTTP process that wrote a sample (liveall mode).
        self.process_resident_memory = Gauge(
            name("process_resident_memory_bytes"),
            "Resident memory of each live process: an HTTP process, or one of its model workers.",
            ["process"],
            multiprocess_mode="liveall",
            registry=registry,
        )

    def counter(self, counter: Counter, **labels: str) -> CounterBuffer:
        """A series of `counter` counted in memory until the next publish."""
        buffer = CounterBuffer(counter.labels(**labels) if labels else counter)
        self._buffers.append(buffer)
        return buffer

    def histogram(self, histogram: Histogram, **labels: str) -> HistogramBuffer:
        """A series of `histogram` bucketed in memory until the next publish."""
        buffer = HistogramBuffer(histogram.labels(**labels) if labels else histogram)
        self._buffers.append(buffer)
        return buffer

    def on_publish(self, sample: Callable[[], None]) -> None:
        """Call `sample` at each publish: it sets the gauges it owns from what it reads now."""
        self._samplers.append(sample)

    def error(self, error_type: str) -> None:
        """Count one error response of this kind."""
        buffer = self._errors.get(error_type)
        if buffer is None:
            buffer = self._errors[error_type] = self.counter(self.errors, error_type=error_type)
        buffer.inc()

    def publish(self) -> None:
        """Write the buffered counts and the sampled gauges to their series."""
        for sample in self._samplers:
            sample()
        for buffer in self._buffers:
            buffer.flush()

    def initialize(
        self, routes: Iterable[str], error_types: Iterable[str], model: str, labels: Iterable[str]
    ) -> None:
        """Create the known label series at zero, so the first scrape already has them.

        Without this a series appears with its first request's count and rate() over it sees no
        increase; alerts on absent series would also fire on a healthy, idle service.
        """
        for route in routes:
            for status_class in ("2xx", "4xx", "5xx"):
                self.request_duration.labels(route=route, status_class=status_class)
        for result in ("hit", "miss"):
            self.cache_lookups.labels(result=result)
        for stage in ("queue", "tokenize", "inference"):
            self.stage_duration.labels(stage=stage)
        for error_type in error_types:
            self.errors.labels(error_type=error_type)
        for label in labels:
            for cached in ("true", "false"):
                self.predictions.labels(model=model, label=label, cached=cached)

    def forget_dead_processes(self) -> None:
        """Drop live-gauge files of HTTP processes that no longer exist (crashed or replaced)."""
        if self.multiprocess_dir is None:
            return
        for file in self.multiprocess_dir.glob("gauge_live*_*.db"):
            pid = int(file.stem.rsplit("_", 1)[1])
            if not _alive(pid):
                mark_process_dead(pid, str(self.multiprocess_dir))  # type: ignore[no-untyped-call]

    def sample_process(self, model_workers: Sequence[int] = ()) -> None:
        """Record the resident memory of this process and of its model workers (by slot)."""
        processes = {"http": "self", **{f"model_worker_{i}": str(pid) for i, pid in enumerate(model_workers)}}
        for label, pid in processes.items():
            try:
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, ValueError):
                continue  # exited since the list was taken
            self.process_resident_memory.labels(process=label).set(pages * os.sysconf("SC_PAGE_SIZE"))

    def render(self) -> bytes:
        """The exposition text for a scrape, aggregated over all HTTP processes in multiprocess mode."""
        self.publish()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        self.forget_dead_processes()
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
