"""ModelPool against real model worker processes: one FIFO, any idle worker, deaths handled."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from service.artifact import load_artifact
from service.classifier import Classifier
from service.errors import ErrorType, ServiceError
from service.metrics import Metrics
from service.pool import ModelPool, PoolStartError
from tests.conftest import Built


@pytest.fixture
def worker_env(small_model: Built, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Model workers read the same settings as their front, from the environment they inherit.
    monkeypatch.setenv("TEXTCLF_MODEL_DIR", str(small_model.artifact))
    monkeypatch.setenv("TEXTCLF_WARMUP_RUNS", "2")
    yield


def pool_of(built: Built, size: int, start_timeout: float = 300.0) -> ModelPool:
    return ModelPool(size, load_artifact(built.artifact).labels, Metrics(None), start_timeout=start_timeout)


@asynccontextmanager
async def running_pool(built: Built, size: int) -> AsyncIterator[ModelPool]:
    """A started pool, closed (drained, workers reaped) on the way out."""
    pool = pool_of(built, size)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


def value(pool: ModelPool, name: str) -> float:
    sample = pool.metrics.registry.get_sample_value(name)
    assert sample is not None, name
    return sample


@pytest.mark.usefixtures("worker_env")
def test_predictions_equal_the_in_process_classifier(small_model: Built) -> None:
    classifier = Classifier.from_artifact(load_artifact(small_model.artifact))
    texts = ["what a great game", "so tired of this", "the bus leaves at 9", "ünïcödé ✓ 🙂", "x" * 2000]

    async def scenario() -> None:
        async with running_pool(small_model, 2) as pool:
            results = await pool.predict_many(texts)
        for text, (prediction, timing) in zip(texts, results, strict=True):
            expected, _ = classifier.predict(text)
            assert prediction.label == expected.label
            assert prediction.scores == pytest.approx(expected.scores, abs=1e-6)
            assert (prediction.tokens, prediction.truncated) == (expected.tokens, expected.truncated)
            assert timing.inference > 0 and timing.queue >= 0
        assert value(pool, "textclf_model_worker_busy_seconds_total") > 0

    asyncio.run(scenario())


@pytest.mark.usefixtures("worker_env")
def test_two_misses_run_on_two_workers_at_once(small_model: Built) -> None:
    long_text = "words that take a while " * 12

    async def scenario() -> None:
        async with running_pool(small_model, 2) as pool:
            pids = set(pool.pids())
            # Alone: how long one text takes end to end through a worker.
            started = time.perf_counter()
            for _ in range(4):
                await pool.predict(long_text)
            alone = (time.perf_counter() - started) / 4
            queued = [asyncio.ensure_future(pool.predict(long_text)) for _ in range(2)]
            await asyncio.sleep(0)
            depth_while_busy = value(pool, "textclf_queue_depth")
            results = await asyncio.gather(*queued)
        assert len(pids) == 2
        # Both dispatched at once, so neither waited in the queue for the other to finish.
        assert depth_while_busy == 0
        assert all(timing.queue < alone / 2 for _, timing in results), (alone, results)

    asyncio.run(scenario())


@pytest.mark.usefixtures("worker_env")
def test_busy_workers_hold_one_job_ahead_and_the_rest_wait_in_the_queue(small_model: Built) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 2) as pool:
            jobs = [asyncio.ensure_future(pool.predict(f"text number {i} " * 10)) for i in range(5)]
            await asyncio.sleep(0)
            depth = value(pool, "textclf_queue_depth")
            held = sorted(len(w.jobs) for w in pool._workers)
            results = await asyncio.gather(*jobs)
        assert (held, depth) == ([2, 2], 1)  # two running, two sent ahead, one queued
        # Queue time counts the wait in the worker's socket too, not only in the front's queue.
        assert all(timing.queue > 0 for _, timing in results[2:])

    asyncio.run(scenario())


@pytest.mark.usefixtures("worker_env")
def test_a_killed_worker_is_replaced_and_its_job_retried_on_another(small_model: Built) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 2) as pool:
            victim = pool.pids()[0]
            jobs = [asyncio.ensure_future(pool.predict(f"retry me {i} " * 20)) for i in range(2)]
            await asyncio.sleep(0)  # both dispatched
            os.kill(victim, signal.SIGKILL)
            results = await asyncio.gather(*jobs)
            assert all(p.label in pool.labels for p, _ in results)
            deadline = time.monotonic() + 60
            # The victim may have finished its job before the signal: wait for the front to see it die.
            while (pool.ready < 2 or victim in pool.pids()) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert pool.ready == 2 and victim not in pool.pids()
            assert value(pool, "textclf_model_worker_restarts_total") == 1
            await pool.predict("served by the replacement too")

    asyncio.run(scenario())


@pytest.mark.usefixtures("worker_env")
def test_a_replacement_is_not_lost_to_a_job_cancelled_while_it_started(small_model: Built) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 1) as pool:
            victim = pool.pids()[0]
            os.kill(victim, signal.SIGKILL)
            # Queued with no worker to run it, then given up on by its client (a request timeout).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pool.predict("waits for a worker that is restarting"), 0.05)
            deadline = time.monotonic() + 60
            while (pool.ready < 1 or victim in pool.pids()) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            # The replacement must take the next text, not sit idle in no list.
            prediction, _ = await asyncio.wait_for(pool.predict("served by the replacement"), 30)
            assert prediction.label in pool.labels

    asyncio.run(scenario())


@pytest.mark.usefixtures("worker_env")
def test_a_job_whose_retry_also_dies_is_answered_model_worker_lost(small_model: Built) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 2) as pool:
            for pid in pool.pids():  # stopped workers take jobs but never answer them
                os.kill(pid, signal.SIGSTOP)
            job = asyncio.ensure_future(pool.predict("doomed"))
            for _ in range(2):  # the first try, then its one retry on the other worker
                await asyncio.sleep(0)
                holder = next(w.process.pid for w in pool._workers if w.jobs)
                os.kill(holder, signal.SIGKILL)
                deadline = time.monotonic() + 30
                while holder in pool.pids() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            with pytest.raises(ServiceError) as err:
                await job
            assert err.value.error_type is ErrorType.MODEL_WORKER_LOST

    asyncio.run(scenario())


@pytest.mark.usefixtures("worker_env")
def test_close_drains_queued_jobs_and_the_workers_exit(small_model: Built) -> None:
    async def scenario() -> None:
        pool = pool_of(small_model, 2)
        await pool.start()
        processes = list(pool._workers)
        jobs = [asyncio.ensure_future(pool.predict(f"drain {i}")) for i in range(6)]
        await asyncio.sleep(0)
        await pool.close()
        assert all(j.done() and not j.exception() for j in jobs)
        assert all(w.process.poll() == 0 for w in processes)
        with pytest.raises(ServiceError):
            await pool.predict("after close")

    asyncio.run(scenario())


def test_a_worker_that_cannot_load_the_model_fails_start(
    small_model: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEXTCLF_MODEL_DIR", str(tmp_path / "missing"))

    async def scenario() -> None:
        pool = pool_of(small_model, 2, start_timeout=120)
        with pytest.raises(PoolStartError):
            await pool.start()
        assert pool.pids() == []

    asyncio.run(scenario())


@pytest.mark.usefixtures("worker_env")
def test_workers_yield_the_cpu_to_their_front(small_model: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTCLF_MODEL_WORKER_NICE", "3")

    async def scenario() -> list[int]:
        async with running_pool(small_model, 2) as pool:
            return [os.getpriority(os.PRIO_PROCESS, pid) for pid in pool.pids()]

    front = os.getpriority(os.PRIO_PROCESS, 0)
    assert asyncio.run(scenario()) == [min(front + 3, 19)] * 2
