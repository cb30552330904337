"""Cache-first classification with model work kept on one dedicated thread per worker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from service.cache import ResultCache
from service.classifier import Classifier, Prediction, Timing

NO_TIME = Timing(0.0, 0.0)


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
    loop free to accept, parse and answer cache hits and health checks while a miss computes.
    """

    def __init__(
        self, classifier: Classifier, cache: ResultCache, version: str, use_thread: bool = True
    ) -> None:
        self.classifier = classifier
        self.cache = cache
        self.version = version
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference") if use_thread else None

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
        if misses:
            computed = await self._run(list(misses))
            for (text, positions), (prediction, timing) in zip(misses.items(), computed, strict=True):
                self.cache.put((self.version, text), prediction)
                for i in positions:
                    outcomes[i] = Outcome(prediction, False, timing)
        return [o for o in outcomes if o is not None]

    async def _run(self, texts: list[str]) -> list[tuple[Prediction, Timing]]:
        if self._executor is None:
            return [self.classifier.predict(t) for t in texts]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: [self.classifier.predict(t) for t in texts])

    def close(self) -> None:
        """Let running work finish, then stop the thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
