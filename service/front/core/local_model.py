"""The co-located backend: the model runs inside the HTTP process, on one inference thread.

One thread, because the session is single-threaded and the fast tokenizer must not be used from
two threads at once ("Already borrowed", tokenizers #537). The thread keeps the event loop free
to accept, parse and answer cache hits while a miss computes. A process that is idle computes
the miss on the loop instead: nothing waits behind it, and the two thread hops cost ~0.25 ms of a
~5 ms request at low load (measured). Each HTTP process has its own queue, so a request can
wait behind a long text while another process idles: `service.front.core.model_pool` exists for that.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from service.front.core.cached_dispatch import Result, moving_average
from service.front.core.errors import queue_timeout
from service.front.telemetry.metric_buffers import CounterBuffer
from service.prediction import Prediction, Timing

if TYPE_CHECKING:  # the model runtime is imported only where a model runs (service.front.app, colocated)
    from service.model.classifier import Classifier

# A process whose last inference ended longer ago than this has no queue.
IDLE_SECONDS = 0.002


class LocalModel:
    """Runs predictions in this process: on the loop when idle, else FIFO on the inference thread."""

    def __init__(
        self,
        classifier: Classifier,
        busy: CounterBuffer,
        queue_timeout: float = math.inf,
        job_timeout: float = math.inf,
    ) -> None:
        self.classifier = classifier
        self._busy = busy  # seconds spent on predictions, as a pool's workers report theirs
        self.job_seconds = 0.0  # a moving average of the model's time per text
        self.labels = classifier.labels
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._queued = 0  # texts submitted to the thread and not finished
        self._last_done = 0.0  # perf_counter() when the last miss finished
        self._queue_timeout = queue_timeout
        self._job_timeout = job_timeout
        self._running_since: float | None = None  # perf_counter() when the text computing now started

    @property
    def ready(self) -> int:
        """1, or 0 while a text has run past the job timeout: a hung model, which cannot be killed
        here, fails readiness and then liveness, and Kubernetes restarts the pod."""
        return 0 if self.unready_seconds() > 0 else 1

    @property
    def pending(self) -> int:
        """Texts waiting for the inference thread or running on it."""
        return self._queued

    def unready_seconds(self) -> float:
        """How long the text computing now has been past the job timeout; 0 if none is."""
        since = self._running_since
        return 0.0 if since is None else max(time.perf_counter() - since - self._job_timeout, 0.0)

    def pids(self) -> list[int]:
        """No processes of its own."""
        return []

    def graphs(self) -> dict[str, int]:
        """The graph its classifier serves, while it is ready."""
        choice = self.classifier.graph
        return {choice.served: 1} if choice is not None and self.ready else {}

    @property
    def graph_choice(self) -> dict[str, Any] | None:
        """How its classifier chose its graph."""
        return None if self.classifier.graph is None else self.classifier.graph.report()

    def begin_shutdown(self, seconds: float) -> None:
        """Nothing to start: its texts are bounded by the queue timeout, and close() waits for them."""

    async def predict_many(self, texts: Sequence[str]) -> list[Result]:
        """Classify texts one by one (unpadded), in one hop to the inference thread when busy.

        The texts of one hop share its fate: a queue timeout is every text's error."""
        try:
            return list(await self._predict_all(texts))
        except Exception as err:
            return [err] * len(texts)

    async def _predict_all(self, texts: Sequence[str]) -> list[tuple[Prediction, Timing]]:
        submitted = time.perf_counter()

        def work() -> tuple[list[tuple[Prediction, Timing]], float]:
            started = time.perf_counter()
            waited = started - submitted
            if waited > self._queue_timeout:
                raise queue_timeout(waited)
            results = []
            try:
                for text in texts:
                    self._running_since = time.perf_counter()
                    prediction, timing = self.classifier.predict(text)
                    results.append((prediction, replace(timing, queue=waited)))
            finally:
                self._running_since = None
            return results, time.perf_counter() - started

        # One text only: a batch on the loop would stall it for the whole batch.
        idle = len(texts) == 1 and self._queued == 0 and submitted - self._last_done > IDLE_SECONDS
        if idle:
            try:
                results, busy = work()
            finally:
                self._last_done = time.perf_counter()
        else:
            self._queued += len(texts)
            try:
                results, busy = await asyncio.get_running_loop().run_in_executor(self._executor, work)
            finally:
                self._queued -= len(texts)
                self._last_done = time.perf_counter()
        self._busy.inc(busy)  # counted on the loop: the buffer is not for threads
        each = busy / len(texts)
        self.job_seconds = moving_average(self.job_seconds, each)
        return results

    async def start(self, warmup_runs: int) -> None:
        """Warm the model up on the thread that will serve it (starting that thread too)."""
        await asyncio.wrap_future(self._executor.submit(self.classifier.warm_up, warmup_runs))

    async def close(self) -> None:
        """Let running work finish, then stop the thread."""
        self._executor.shutdown(wait=True)
