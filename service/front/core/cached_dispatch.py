"""Cache-first classification: hits answered on the event loop, misses sent to a model backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any, Protocol

from service.front.core.errors import ErrorType, ServiceError
from service.front.core.result_cache import ResultCache
from service.front.telemetry.metrics import Metrics
from service.prediction import Prediction, Timing

NO_TIME = Timing(0.0, 0.0)
# Each computed text's weight in a backend's moving average of its time (admission's estimate).
JOB_SECONDS_WEIGHT = 0.05


def moving_average(average: float, seconds: float) -> float:
    """A backend's `job_seconds` after one more text took `seconds`: the first sets it."""
    return average + JOB_SECONDS_WEIGHT * (seconds - average) if average else seconds


# One text's result from a backend: its prediction and stage times, or the error it met.
Result = tuple[Prediction, Timing] | Exception


class Backend(Protocol):
    """Where misses are computed: the model workers (service.front.core.model_pool.ModelPool) or
    the colocated model (service.front.core.local_model.LocalModel)."""

    labels: tuple[str, ...]
    job_seconds: float  # the model time a text took lately (a moving average; 0 before the first)

    @property
    def ready(self) -> int:
        """Models able to take a job now."""

    @property
    def pending(self) -> int:
        """Texts waiting for a model or running on one."""

    def unready_seconds(self) -> float:
        """How long no model has been able to take a job; 0 while one can."""

    def pids(self) -> list[int]: ...

    def graphs(self) -> dict[str, int]:
        """How many ready models serve each of the artifact's graphs."""

    @property
    def graph_choice(self) -> dict[str, Any] | None:
        """How the first model ready chose its graph (service.model.graphs.GraphChoice.report)."""

    async def predict_many(self, texts: Sequence[str]) -> list[Result]:
        """Each text's result, in order; one text's error does not discard the others' results."""

    def begin_shutdown(self, seconds: float) -> None:
        """SIGTERM arrived: every text must be answered, and close() done, within `seconds`."""

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A prediction, whether it came from the cache, and the stage times it cost."""

    prediction: Prediction
    cached: bool
    timing: Timing


class CachedDispatch:
    """Looks texts up in the cache; computes the distinct misses on the backend; records metrics."""

    def __init__(
        self,
        backend: Backend,
        cache: ResultCache,
        model: str,
        version: str,
        metrics: Metrics,
        max_pending: int,
        max_wait: float = 0.0,
    ) -> None:
        self.backend = backend
        self.max_pending = max_pending
        self.max_wait = max_wait  # seconds; 0: the bound is max_pending texts
        self.cache = cache
        self.version = version
        self.metrics = metrics
        self._computing: dict[str, asyncio.Future[Result | None]] = {}  # texts on their way to the model
        self._hits = metrics.counter(metrics.cache_lookups, result="hit")
        self._misses = metrics.counter(metrics.cache_lookups, result="miss")
        self._stages = {
            s: metrics.histogram(metrics.stage_duration, stage=s) for s in ("queue", "tokenize", "inference")
        }
        self._tokens = metrics.histogram(metrics.input_tokens)
        self._truncations = metrics.counter(metrics.truncations)
        self._predictions = {
            (label, cached): metrics.counter(
                metrics.predictions, model=model, label=label, cached=str(cached).lower()
            )
            for label in backend.labels
            for cached in (False, True)
        }
        # Told each request's outcomes (service.front.telemetry.tracing), when tracing is on.
        self.trace: Callable[[Sequence[Outcome]], None] | None = None
        metrics.on_publish(self._sample_cache)

    async def classify(self, text: str) -> Outcome:
        """Classify one normalized text."""
        hit = self.cache.get((self.version, text))
        if hit is not None:
            self._hits.inc()
            self._count(hit, True)
            outcome = Outcome(hit, True, NO_TIME)
            if self.trace is not None:
                self.trace((outcome,))
            return outcome
        if text in self._computing:  # another request is computing it: wait for that answer
            return (await self.classify_many([text]))[0]
        # The common miss, without the batch path's bookkeeping (measured: a third of its cost).
        if self.cache.enabled:
            self._misses.inc()
        self._admit(1)
        [result] = await self._shared([text])
        if isinstance(result, Exception):
            raise _fresh(result)
        outcome = self._computed(text, *result)
        self._count(outcome.prediction, False)
        if self.trace is not None:
            self.trace((outcome,))
        return outcome

    def _count(self, prediction: Prediction, cached: bool) -> None:
        """An answer in the label mix: its label, or each label a multi-label model selected."""
        if prediction.selected is None:
            self._predictions[prediction.label, cached].inc()
        else:
            for label in prediction.selected:
                self._predictions[label, cached].inc()

    async def classify_many(self, texts: Sequence[str]) -> list[Outcome]:
        """Classify texts one by one (unpadded); a text repeated within the call, or already on its
        way to the model for another request, is computed once."""
        outcomes: list[Outcome | None] = []
        misses: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            hit = self.cache.get((self.version, text))
            outcomes.append(Outcome(hit, True, NO_TIME) if hit is not None else None)
            if hit is None:
                misses.setdefault(text, []).append(i)
        computing = self._computing
        joined = {t: computing[t] for t in misses if t in computing} if computing else {}
        if self.cache.enabled:  # texts joined to another request's are counted once they have a result
            missed = sum(len(p) for t, p in misses.items() if t not in joined)
            self._hits.inc(len(texts) - sum(len(p) for p in misses.values()))
            self._misses.inc(missed)
        if misses:
            await self._compute(misses, joined, outcomes)
        done = [o for o in outcomes if o is not None]
        for o in done:
            self._count(o.prediction, o.cached)
        if self.trace is not None:
            self.trace(done)
        return done

    async def _compute(
        self,
        misses: dict[str, list[int]],
        joined: dict[str, asyncio.Future[Result | None]],
        outcomes: list[Outcome | None],
    ) -> None:
        """Compute the misses not already being computed, and wait for those that are. Each text
        computed is cached, even when another text of them failed."""
        own = [t for t in misses if t not in joined]
        if own:
            self._admit(len(own))
        results = dict(zip(own, await self._shared(own), strict=True)) if own else {}
        computed = set(own)
        for text, waiting in joined.items():
            results[text], took_over = await self._wait_for(text, waiting)
            (self._misses if took_over else self._hits).inc(len(misses[text]))
            if took_over:
                computed.add(text)
        failure: Exception | None = None
        for text, result in results.items():
            if isinstance(result, Exception):
                failure = failure or result
                continue
            prediction, timing = result
            outcome = (
                self._computed(text, *result) if text in computed else Outcome(prediction, True, NO_TIME)
            )
            for i in misses[text]:
                outcomes[i] = outcome
        if failure is not None:
            raise _fresh(failure)

    async def _wait_for(self, text: str, waiting: asyncio.Future[Result | None]) -> tuple[Result, bool]:
        """The result another request is computing for `text`, and False. If that request gave up
        (its client left), the first of its waiters takes over as a miss of its own (admitted,
        computed once for the others, cached): then its result and True."""
        while True:
            # Not awaited directly: a cancelled waiter would cancel the future for everyone.
            await asyncio.wait([waiting])
            shared = waiting.result()
            if shared is not None:
                return shared, False
            taken_over = self._computing.get(text)
            if taken_over is None:
                try:
                    self._admit(1)
                except ServiceError as refused:  # a result like any text's: the others are still cached
                    return refused, True
                [result] = await self._shared([text])
                return result, True
            waiting = taken_over

    async def _shared(self, texts: list[str]) -> list[Result]:
        """The backend's results for `texts`, published to any request asking for one meanwhile.

        Only with the cache on: coalescing is caching, and a cache-off benchmark must compute
        every request."""
        if not self.cache.enabled:
            return await self.backend.predict_many(texts)
        loop = asyncio.get_running_loop()
        futures = {t: loop.create_future() for t in texts}
        self._computing.update(futures)
        results: list[Result] = []
        try:
            results = await self.backend.predict_many(texts)
        finally:
            for (text, future), result in zip_longest(futures.items(), results):
                del self._computing[text]
                future.set_result(result)  # None when this request was cancelled first
        return results

    def _admit(self, texts: int) -> None:
        """429 for texts that would wait too long for the model: past `max_wait` seconds, by the
        texts ahead of them and what a text took lately, or (max_wait 0) past `max_pending` texts.
        A batch counts its texts: admission bounds requests, this bounds what waits for the model."""
        pending = self.backend.pending
        if not pending:
            return
        backend = self.backend
        if self.max_wait and backend.job_seconds:  # the count until a first text was timed
            too_long = (pending + texts) * backend.job_seconds > self.max_wait * max(backend.ready, 1)
        else:
            too_long = pending + texts > self.max_pending
        if too_long:
            raise ServiceError(ErrorType.OVERLOADED, "too many texts waiting for the model; retry later")

    def _computed(self, text: str, prediction: Prediction, timing: Timing) -> Outcome:
        """A prediction this request had computed: cached and its stage times recorded."""
        self.cache.put((self.version, text), prediction)
        self._record(prediction, timing)
        return Outcome(prediction, False, timing)

    def _record(self, prediction: Prediction, timing: Timing) -> None:
        self._stages["queue"].observe(timing.queue)
        self._stages["tokenize"].observe(timing.tokenize)
        self._stages["inference"].observe(timing.inference)
        self._tokens.observe(prediction.tokens)
        if prediction.truncated:
            self._truncations.inc()

    def _sample_cache(self) -> None:
        self.metrics.cache_entries.set(len(self.cache))
        self.metrics.cache_bytes.set(self.cache.bytes)


def _fresh(error: Exception) -> Exception:
    """An error to raise in this request: a shared ServiceError is copied, so requests that waited
    for the same text do not pile their tracebacks onto one object."""
    if isinstance(error, ServiceError):
        return ServiceError(error.error_type, error.message)
    return error
