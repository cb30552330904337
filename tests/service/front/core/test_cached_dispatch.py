from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.front.core.cached_dispatch import CachedDispatch, Outcome
from service.front.core.errors import ErrorType, ServiceError
from service.front.core.local_model import LocalModel
from service.front.core.model_pool import ModelPool
from service.front.core.result_cache import ResultCache
from service.front.telemetry.metrics import Metrics
from service.manifest import load_artifact
from service.model.classifier import Classifier
from service.prediction import Prediction, Timing
from tests.conftest import Built
from tests.support.metrics import published
from tests.support.model_workers import worker_settings
from tests.support.waiting import settled, until


class CountingClassifier(Classifier):
    """The real classifier, counting how many texts it computed and on which thread."""

    calls = 0
    threads: list[str]

    def predict(self, text: str) -> tuple[Prediction, Timing]:
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        return super().predict(text)


def make(built: Built, cache_entries: int = 100) -> tuple[CachedDispatch, CountingClassifier]:
    artifact = load_artifact(built.artifact)
    classifier = CountingClassifier.from_artifact(artifact)
    classifier.threads = []
    cache = ResultCache(cache_entries, 1 << 20)
    metrics = Metrics(None)
    local = LocalModel(classifier, metrics.counter(metrics.model_worker_busy))
    return CachedDispatch(local, cache, artifact.name, artifact.version, metrics, max_pending=32), classifier


def test_batch_computes_each_distinct_miss_once_and_keeps_order(small_model: Built) -> None:
    inference, classifier = make(small_model)
    texts = ["good", "bad", "good", "neutral news", "bad"]
    outcomes = asyncio.run(inference.classify_many(texts))
    assert classifier.calls == 3
    assert [o.prediction for o in outcomes] == [classifier.predict(t)[0] for t in texts]
    assert not any(o.cached for o in outcomes)


def test_hits_skip_the_model_and_return_the_same_prediction(small_model: Built) -> None:
    inference, classifier = make(small_model)

    def busy() -> float:
        return published(inference.metrics, "textclf_model_worker_busy_seconds_total")

    first = asyncio.run(inference.classify("hello there"))
    computed = busy()
    second = asyncio.run(inference.classify("hello there"))
    assert classifier.calls == 1
    # The co-located model counts its busy time like a pool's workers; a hit adds none.
    assert computed > 0 and busy() == computed
    assert second.cached and not first.cached and second.prediction is first.prediction


def test_colocated_idle_process_computes_on_the_loop_and_a_busy_one_queues_on_the_thread(
    small_model: Built,
) -> None:
    inference, classifier = make(small_model, cache_entries=0)

    async def scenario() -> None:
        await asyncio.gather(inference.classify("first"), inference.classify("second"))
        await inference.classify_many(["a batch", "never runs on the loop"])
        await inference.backend.close()

    asyncio.run(scenario())
    loop_thread = threading.current_thread().name
    assert classifier.threads[0] == loop_thread
    assert all(name.startswith("inference") for name in classifier.threads[1:]), classifier.threads


class HangingClassifier(Classifier):
    """The real classifier, hung on one text until released (a model stuck in the HTTP process)."""

    release: threading.Event

    def predict(self, text: str) -> tuple[Prediction, Timing]:
        if text == "hangs":
            self.release.wait(60)
        return super().predict(text)


def test_colocated_model_past_the_job_timeout_fails_readiness_until_it_returns(small_model: Built) -> None:
    classifier = HangingClassifier.from_artifact(load_artifact(small_model.artifact))
    classifier.release = threading.Event()
    metrics = Metrics(None)
    local = LocalModel(classifier, metrics.counter(metrics.model_worker_busy), job_timeout=0.2)

    async def scenario() -> None:
        assert (local.ready, local.unready_seconds()) == (1, 0.0)
        job = asyncio.ensure_future(local.predict_many(["fine", "hangs"]))  # a batch: on the thread
        await until(lambda: not local.ready, "the hung text past the job timeout")
        assert local.unready_seconds() > 0  # what liveness compares with its limit
        classifier.release.set()
        results = await job
        assert all(not isinstance(r, Exception) for r in results)
        assert (local.ready, local.unready_seconds()) == (1, 0.0)
        await local.close()

    asyncio.run(scenario())


@pytest.fixture
def real_pool(small_model: Built) -> Callable[..., Awaitable[ModelPool]]:
    """Make a started pool of real worker processes; closed within a second (`shutdown_seconds`)."""
    artifact = load_artifact(small_model.artifact)
    worker = worker_settings(small_model)

    async def make(size: int, **limits: Any) -> ModelPool:
        pool = ModelPool(
            size, artifact.labels, artifact.version, Metrics(None), worker, shutdown_seconds=1, **limits
        )
        await pool.start()
        return pool

    return make


@pytest.fixture
def hung_pool(real_pool: Callable[..., Awaitable[ModelPool]]) -> Callable[..., Awaitable[ModelPool]]:
    """Make a started pool whose first worker is hung (SIGSTOP)."""

    async def make(size: int, **limits: Any) -> ModelPool:
        pool = await real_pool(size, **limits)
        os.kill(pool.pids()[0], signal.SIGSTOP)
        return pool

    return make


def over(pool: ModelPool, max_pending: int = 32) -> CachedDispatch:
    return CachedDispatch(pool, ResultCache(100, 1 << 20), "m", pool.version, pool.metrics, max_pending)


def test_a_batch_caches_the_texts_computed_before_another_of_its_texts_timed_out(
    hung_pool: Callable[..., Awaitable[ModelPool]],
) -> None:
    texts = ["first of the batch", "second of the batch"]

    async def scenario() -> list[bool]:
        pool = await hung_pool(2, job_timeout=0.5, queue_timeout=0.3)
        inference = over(pool)
        try:
            with pytest.raises(ServiceError) as err:
                await asyncio.wait_for(inference.classify_many(texts), 30)
            assert err.value.error_type is ErrorType.QUEUE_TIMEOUT
            return [inference.cache.get((pool.version, t)) is not None for t in texts]
        finally:
            await pool.close()

    # One text ran on the healthy worker, the other on the hung one (retried past the queue timeout).
    assert sorted(asyncio.run(scenario())) == [False, True]


def test_a_batch_weighs_its_texts_against_the_bound_on_texts_waiting_for_the_model(
    hung_pool: Callable[..., Awaitable[ModelPool]],
) -> None:
    async def scenario() -> None:
        pool = await hung_pool(1)
        inference = over(pool, max_pending=4)
        waiting: list[asyncio.Future[object]] = [
            asyncio.ensure_future(inference.classify_many(["a", "b", "c"]))
        ]
        await settled(lambda: pool.pending == 3)
        with pytest.raises(ServiceError) as err:
            await inference.classify_many(["d", "e"])  # 3 + 2 > 4
        assert err.value.error_type is ErrorType.OVERLOADED
        waiting.append(asyncio.ensure_future(inference.classify("f")))  # 3 + 1 fits
        await settled(lambda: pool.pending == 4)
        with pytest.raises(ServiceError):
            await inference.classify("g")
        await pool.close()  # answers the held texts 503 within its shutdown clock
        assert all(isinstance(w.exception(), ServiceError) for w in waiting)

    asyncio.run(scenario())


def lookups(inference: CachedDispatch, result: str) -> float:
    return published(inference.metrics, "textclf_cache_lookups_total", result=result)


def test_concurrent_requests_for_one_new_text_compute_it_once(
    real_pool: Callable[..., Awaitable[ModelPool]],
) -> None:
    async def scenario() -> None:
        pool = await real_pool(2)
        inference = over(pool)
        try:
            outcomes = await asyncio.gather(
                *(inference.classify("one new text, asked 8 times") for _ in range(8))
            )
        finally:
            await pool.close()
        assert (lookups(inference, "miss"), lookups(inference, "hit")) == (1, 7)
        assert len({o.prediction for o in outcomes}) == 1
        assert sorted(o.cached for o in outcomes) == [False] + [True] * 7

    asyncio.run(scenario())


def test_when_the_first_asker_leaves_one_waiter_takes_over_as_a_miss_for_the_others(
    real_pool: Callable[..., Awaitable[ModelPool]],
) -> None:
    text = "asked, then abandoned"

    async def scenario() -> None:
        pool = await real_pool(1)
        inference = over(pool)
        try:
            first = asyncio.ensure_future(inference.classify(text))
            await settled(lambda: pool.pending == 1)
            waiters = [asyncio.ensure_future(inference.classify(text)) for _ in range(3)]
            # Its client went away. The loop runs ready tasks in order: the waiters' first steps
            # (each joins the first's computation) come before the first hears of its cancellation.
            first.cancel()
            outcomes = await asyncio.wait_for(asyncio.gather(*waiters), 30)
            again = await inference.classify(text)
        finally:
            await pool.close()
        assert first.cancelled()
        # One waiter computed it, as a miss; the other two waited for that one; then it was cached.
        assert [o.cached for o in outcomes] == [False, True, True]
        assert len({o.prediction for o in outcomes}) == 1
        assert again.cached and again.prediction == outcomes[0].prediction
        assert (lookups(inference, "miss"), lookups(inference, "hit")) == (2, 3)

    asyncio.run(scenario())


def test_a_waiter_taking_over_is_admitted_like_any_miss(
    hung_pool: Callable[..., Awaitable[ModelPool]],
) -> None:
    async def scenario() -> None:
        pool = await hung_pool(1)  # its only worker hung: what was sent to it stays pending
        inference = over(pool, max_pending=2)
        try:
            first = asyncio.ensure_future(inference.classify("abandoned"))
            await settled(lambda: pool.pending == 1)
            waiter = asyncio.ensure_future(inference.classify("abandoned"))
            others = [asyncio.ensure_future(inference.classify("another text"))]
            await settled(lambda: pool.pending == 2)
            first.cancel()  # frees its place; a new text takes it before the waiter wakes (FIFO loop)
            others.append(asyncio.ensure_future(inference.classify("a third text")))
            # Taking over would make 3 texts wait for the model, past the bound of 2.
            with pytest.raises(ServiceError) as err:
                await asyncio.wait_for(waiter, 30)
            assert err.value.error_type is ErrorType.OVERLOADED
            assert pool.pending == 2
        finally:
            await pool.close()
        assert all(isinstance(o.exception(), ServiceError) for o in others)

    asyncio.run(scenario())


# Coalescing is caching: a cache-off benchmark must compute every request.
def test_with_the_cache_off_concurrent_identical_texts_are_each_computed(
    real_pool: Callable[..., Awaitable[ModelPool]],
) -> None:
    async def scenario() -> list[bool]:
        pool = await real_pool(2)
        inference = CachedDispatch(pool, ResultCache(0, 0), "m", pool.version, pool.metrics, 32)
        try:
            outcomes = await asyncio.gather(*(inference.classify("same text, no cache") for _ in range(4)))
            return [o.cached for o in outcomes]
        finally:
            await pool.close()

    assert asyncio.run(scenario()) == [False] * 4


def test_a_text_is_refused_by_the_wait_it_would_have_not_by_a_count(
    real_pool: Callable[..., Awaitable[ModelPool]],
) -> None:
    async def scenario() -> None:
        pool = await real_pool(1)
        # What a text takes, learnt from replies: at least a text's own stages, at most a round trip.
        started = time.perf_counter()
        outcomes = [await over(pool).classify(f"learn {i}") for i in range(5)]
        took = time.perf_counter() - started
        job = pool.job_seconds
        assert min(o.timing.tokenize + o.timing.inference for o in outcomes) <= job <= took
        os.kill(pool.pids()[0], signal.SIGSTOP)
        # Room for 3.5 texts' time on the one worker: three wait, the fourth would wait too long.
        inference = CachedDispatch(
            pool, ResultCache(0, 0), "m", pool.version, pool.metrics, 1000, max_wait=3.5 * job
        )
        waiting: list[asyncio.Future[object]] = [
            asyncio.ensure_future(inference.classify_many(["a", "b", "c"]))
        ]
        await settled(lambda: pool.pending == 3)
        with pytest.raises(ServiceError) as err:
            await inference.classify("d")
        assert err.value.error_type is ErrorType.OVERLOADED
        inference.max_wait = 4.5 * job  # room for one more
        waiting.append(asyncio.ensure_future(inference.classify("d")))
        await settled(lambda: pool.pending == 4)
        await pool.close()
        assert all(isinstance(w.exception(), ServiceError) for w in waiting)

    asyncio.run(scenario())


def test_the_colocated_model_learns_what_a_text_takes(small_model: Built) -> None:
    inference, _ = make(small_model)
    local = inference.backend
    assert local.job_seconds == 0.0  # nothing timed yet: admission counts texts meanwhile

    async def scenario() -> tuple[list[Outcome], float]:
        started = time.perf_counter()
        outcomes = [await inference.classify(f"text number {i}") for i in range(4)]
        outcomes += await inference.classify_many(["a batch", "of texts", "on its thread"])
        return outcomes, time.perf_counter() - started

    outcomes, took = asyncio.run(scenario())
    # At least a text's own stages, at most what the calls took in all.
    assert min(o.timing.tokenize + o.timing.inference for o in outcomes) <= local.job_seconds <= took
