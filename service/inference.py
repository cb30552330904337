"""Cache-first classification with model work kept on one dedicated thread per worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from service.cache import ResultCache
from service.classifier import Classifier, Prediction, Timing
from service.errors import ErrorType, ServiceError
from service.metrics import Metrics

NO_TIME = Timing(0.0, 0.0)
# A worker whose last inference ended longer ago than this has no queue: see Inference._run.
IDLE_SECONDS = 0.002


@dataclass(frozen=True, slots=True)
class Outcome:
    """A prediction, whether it came from the cache, and the stage times it cost."""

    prediction: Prediction
    cached: bool
    timing: Timing


class Inference:
    """Looks texts up in the cache on the event loop; runs misses on the inference thread.

    One thread, because the session is single-threaded and the fast tokenizer must not be used
    from two threads at once ("Already borrowed", tokenizers #537). The thread keeps the event
    loop free to accept, parse and answer cache hits and health checks while a miss computes,
    and its queue serves misses first come, first served, which lowers p99 under load
    (BENCHMARKS.md). A worker that is idle computes the miss on the loop instead: nothing waits
    behind it, and the two thread hops cost ~0.25 ms of a ~5 ms request at low load (measured).
    """

    def __init__(
        self,
        classifier: Classifier,
        cache: ResultCache,
        version: str,
        metrics: Metrics,
        use_thread: bool = True,
        idle_seconds: float = IDLE_SECONDS,
        queue_timeout: float = float("inf"),
    ) -> None:
        self.classifier = classifier
        self.cache = cache
        self.version = version
        self.metrics = metrics
        # Label children bound once: .labels() takes a lock and a lookup on every call.
        self._hits = metrics.cache_lookups.labels(result="hit")
        self._misses = metrics.cache_lookups.labels(result="miss")
        self._stages = {s: metrics.stage_duration.labels(stage=s) for s in ("queue", "tokenize", "inference")}
        self._predictions = {
            (label, cached): metrics.predictions.labels(label=label, cached=str(cached).lower())
            for label in classifier.labels
            for cached in (False, True)
        }
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference") if use_thread else None
        self._queued = 0  # misses submitted to the thread and not finished
        self._last_done = 0.0  # perf_counter() when the last miss finished
        self._idle_seconds = idle_seconds
        self._queue_timeout = queue_timeout

    async def classify(self, text: str) -> Outcome:
        """Classify one normalized text."""
        return (await self.classify_many([text]))[0]

    async def classify_many(self, texts: Sequence[str]) -> list[Outcome]:
        """Classify texts one by one (unpadded); distinct misses go to the inference thread in one hop."""
        outcomes: list[Outcome | None] = []
        misses: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            hit = self.cache.get((self.version, text))
            outcomes.append(Outcome(hit, True, NO_TIME) if hit is not None else None)
            if hit is None:
                misses.setdefault(text, []).append(i)
        if self.cache.enabled:
            missed = sum(map(len, misses.values()))
            self._hits.inc(len(texts) - missed)
            self._misses.inc(missed)
        if misses:
            computed = await self._run(list(misses))
            for (text, positions), (prediction, timing) in zip(misses.items(), computed, strict=True):
                self.cache.put((self.version, text), prediction)
                self._observe(prediction, timing)
                for i in positions:
                    outcomes[i] = Outcome(prediction, False, timing)
            self.metrics.cache_entries.set(len(self.cache))
            self.metrics.cache_bytes.set(self.cache.bytes)
        done = [o for o in outcomes if o is not None]
        for o in done:
            self._predictions[o.prediction.label, o.cached].inc()
        return done

    def _observe(self, prediction: Prediction, timing: Timing) -> None:
        self._stages["queue"].observe(timing.queue)
        self._stages["tokenize"].observe(timing.tokenize)
        self._stages["inference"].observe(timing.inference)
        self.metrics.input_tokens.observe(prediction.tokens)
        if prediction.truncated:
            self.metrics.truncations.inc()

    async def _run(self, texts: list[str]) -> list[tuple[Prediction, Timing]]:
        submitted = time.perf_counter()

        def work() -> list[tuple[Prediction, Timing]]:
            # Queue time: waiting for the inference thread behind other requests' misses.
            waited = time.perf_counter() - submitted
            if waited > self._queue_timeout:
                # The client has likely given up; computing it would only delay the requests behind.
                raise ServiceError(
                    ErrorType.QUEUE_TIMEOUT, f"waited {waited:.3f} s for the model; retry later"
                )
            return [(p, replace(t, queue=waited)) for p, t in map(self.classifier.predict, texts)]

        # One text only: a batch on the loop would stall it for the whole batch.
        idle = len(texts) == 1 and self._queued == 0 and submitted - self._last_done > self._idle_seconds
        if self._executor is None or idle:
            try:
                return work()
            finally:
                self._last_done = time.perf_counter()
        self._queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            self._queued -= 1
            self._last_done = time.perf_counter()

    def warm_up(self, runs: int) -> None:
        """Warm the model up on the thread that will serve it (starting that thread too)."""
        if self._executor is None:
            self.classifier.warm_up(runs)
        else:
            self._executor.submit(self.classifier.warm_up, runs).result()

    def close(self) -> None:
        """Let running work finish, then stop the thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
