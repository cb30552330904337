"""Cache-first classification: hits answered on the event loop, misses sent to a model backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from service.cache import ResultCache
from service.classifier import Prediction, Timing
from service.metrics import Metrics

NO_TIME = Timing(0.0, 0.0)


class Backend(Protocol):
    """Where misses are computed: `service.pool.ModelPool` or `service.local_model.LocalModel`."""

    labels: tuple[str, ...]

    @property
    def ready(self) -> int: ...

    def pids(self) -> list[int]: ...

    async def predict_many(self, texts: Sequence[str]) -> list[tuple[Prediction, Timing]]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A prediction, whether it came from the cache, and the stage times it cost."""

    prediction: Prediction
    cached: bool
    timing: Timing


class Inference:
    """Looks texts up in the cache; computes the distinct misses on the backend; records metrics."""

    def __init__(self, backend: Backend, cache: ResultCache, version: str, metrics: Metrics) -> None:
        self.backend = backend
        self.cache = cache
        self.version = version
        self.metrics = metrics
        # Label children bound once: .labels() takes a lock and a lookup on every call.
        self._hits = metrics.cache_lookups.labels(result="hit")
        self._misses = metrics.cache_lookups.labels(result="miss")
        self._stages = {s: metrics.stage_duration.labels(stage=s) for s in ("queue", "tokenize", "inference")}
        self._predictions = {
            (label, cached): metrics.predictions.labels(label=label, cached=str(cached).lower())
            for label in backend.labels
            for cached in (False, True)
        }

    async def classify(self, text: str) -> Outcome:
        """Classify one normalized text."""
        return (await self.classify_many([text]))[0]

    async def classify_many(self, texts: Sequence[str]) -> list[Outcome]:
        """Classify texts one by one (unpadded); a text repeated within the call is computed once."""
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
            computed = await self.backend.predict_many(list(misses))
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
