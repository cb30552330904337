"""ModelPool against real model worker processes: one FIFO, any idle worker, deaths handled."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.front.core.cached_dispatch import CachedDispatch
from service.front.core.errors import ErrorType, ServiceError
from service.front.core.model_pool import ModelPool, PoolStartError
from service.front.core.result_cache import ResultCache
from service.front.core.worker_link import spawn_worker
from service.front.telemetry.metrics import Metrics
from service.manifest import load_artifact
from service.model.classifier import Classifier
from service.worker_settings import WorkerSettings
from tests.conftest import Built
from tests.support.metrics import published
from tests.support.model_workers import worker_settings
from tests.support.processes import alive, state
from tests.support.waiting import settled, until


def pool_of(built: Built, size: int, settings: WorkerSettings | None = None, **limits: Any) -> ModelPool:
    artifact = load_artifact(built.artifact)
    settings = settings or worker_settings(built)
    return ModelPool(size, artifact.labels, artifact.version, Metrics(None), settings, **limits)


@asynccontextmanager
async def running_pool(built: Built, size: int, **limits: Any) -> AsyncIterator[ModelPool]:
    """A started pool, closed (drained, workers reaped) on the way out."""
    pool = pool_of(built, size, **limits)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


def then_real_workers(commands: Iterator[list[str]]) -> Callable[[Sequence[str]], tuple[Any, socket.socket]]:
    """A pool's spawn: these commands' workers, then real ones (given what their front says)."""

    def spawn(args: Sequence[str]) -> tuple[Any, socket.socket]:
        command = next(commands, None)
        return spawn_worker(args) if command is None else spawn_worker(command=command)

    return spawn


def value(pool: ModelPool, name: str) -> float:
    return published(pool.metrics, name)


def stop(pid: int) -> None:
    """SIGSTOP: the worker keeps its socket and its jobs but never answers (a hung worker)."""
    os.kill(pid, signal.SIGSTOP)


def test_predictions_equal_the_in_process_classifier(small_model: Built) -> None:
    texts = ["what a great game", "so tired of this", "the bus leaves at 9", "ünïcödé ✓ 🙂", "x" * 2000]

    async def scenario() -> None:
        async with running_pool(small_model, 2) as pool:
            results = await pool.predict_many(texts)
            # The first worker timed the model's graphs; the second serves the one it chose.
            assert pool.graph_choice is not None and pool.graph_choice["rule"] == "timed"
            served = pool.graph_choice["served"]
            assert pool.graphs() == {served: 2}
        classifier = Classifier.from_artifact(load_artifact(small_model.artifact), graph=served)
        for text, result in zip(texts, results, strict=True):
            assert not isinstance(result, Exception), result
            prediction, timing = result
            expected, _ = classifier.predict(text)
            assert prediction.label == expected.label
            assert prediction.scores == pytest.approx(expected.scores, abs=1e-6)
            assert (prediction.tokens, prediction.truncated) == (expected.tokens, expected.truncated)
            assert timing.inference > 0 and timing.queue >= 0
        assert value(pool, "textclf_model_worker_busy_seconds_total") > 0

    asyncio.run(scenario())


def test_two_misses_run_on_two_workers_at_once(small_model: Built) -> None:
    long_text = "words that take a while " * 12

    async def scenario() -> None:
        async with running_pool(small_model, 2) as pool:
            victim, other = pool.pids()
            for pid in (victim, other):  # each keeps what it is sent, unanswered
                stop(pid)
            queued = [asyncio.ensure_future(pool.predict(long_text)) for _ in range(2)]
            await settled(lambda: pool.pending == 2)
            # Both dispatched at once: neither waits in the queue for the other to finish.
            assert value(pool, "textclf_queue_depth") == 0
            # One to each worker: the victim held exactly one job, the one retried when it dies.
            os.kill(victim, signal.SIGKILL)
            await until(lambda: victim not in pool.pids(), "the victim's death seen")
            assert value(pool, "textclf_model_job_retries_total") == 1
            os.kill(other, signal.SIGCONT)
            results = await asyncio.wait_for(asyncio.gather(*queued), 60)
        assert all(p.label in pool.labels for p, _ in results)

    asyncio.run(scenario())


def test_busy_workers_hold_one_job_ahead_and_the_rest_wait_in_the_queue(small_model: Built) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 2) as pool:
            victim, other = pool.pids()
            for pid in (victim, other):  # each keeps what it is sent, unanswered
                stop(pid)
            jobs = [asyncio.ensure_future(pool.predict(f"text number {i} " * 10)) for i in range(5)]
            await settled(lambda: pool.pending == 5)
            submitted = time.perf_counter()  # every job was submitted by now
            assert value(pool, "textclf_queue_depth") == 1  # four with the workers, one queued
            # Two each: killed, the victim's two (the one it ran and the one sent ahead) are its
            # retries, and go back to the head of the queue.
            os.kill(victim, signal.SIGKILL)
            await until(lambda: victim not in pool.pids(), "the victim's death seen")
            assert value(pool, "textclf_model_job_retries_total") == 2
            assert value(pool, "textclf_queue_depth") == 3
            # No job can start before this (the replacement is still loading its model).
            resumed = time.perf_counter()
            os.kill(other, signal.SIGCONT)
            results = await asyncio.wait_for(asyncio.gather(*jobs), 60)
        # Queue time counts the wait in the worker's socket too, not only in the front's queue:
        # the jobs sent to the stopped worker waited there until it resumed.
        assert all(timing.queue >= resumed - submitted for _, timing in results)

    asyncio.run(scenario())


def test_a_killed_worker_is_replaced_and_its_job_retried_on_another(small_model: Built) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 2) as pool:
            victim = pool.pids()[0]
            jobs = [asyncio.ensure_future(pool.predict(f"retry me {i} " * 20)) for i in range(2)]
            await settled(lambda: pool.pending == 2 and value(pool, "textclf_queue_depth") == 0)
            os.kill(victim, signal.SIGKILL)
            results = await asyncio.wait_for(asyncio.gather(*jobs), 60)
            assert all(p.label in pool.labels for p, _ in results)
            # The victim may have finished its job before the signal: wait for the front to see it die.
            await until(lambda: pool.ready == 2 and victim not in pool.pids(), "the victim replaced")
            assert value(pool, "textclf_model_worker_restarts_total") == 1
            await pool.predict("served by the replacement too")

    asyncio.run(scenario())


def test_a_replacement_is_not_lost_to_a_job_cancelled_while_it_started(small_model: Built) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 1) as pool:
            victim = pool.pids()[0]
            os.kill(victim, signal.SIGKILL)
            # Queued with no worker to run it, then given up on by its client (a request timeout).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pool.predict("waits for a worker that is restarting"), 0.05)
            await until(lambda: pool.ready == 1 and victim not in pool.pids(), "the victim replaced")
            # The replacement must take the next text, not sit idle in no list.
            prediction, _ = await asyncio.wait_for(pool.predict("served by the replacement"), 30)
            assert prediction.label in pool.labels

    asyncio.run(scenario())


# A worker that says the right hello (serving the graph it is given), takes each job and never
# answers it (as a hung one does).
SWALLOWS = """
import socket, sys
from service.protocol import JobReader, pack_hello
version, graph, _, fd = sys.argv[1:]
sock = socket.socket(fileno=int(fd))
sock.sendall(pack_hello(version, {"served": graph, "rule": "timed", "p50_ms": {}, "rounds": 3}))
jobs = JobReader(sock)
while jobs.next() is not None:
    pass
"""


def test_a_job_whose_retry_also_dies_is_answered_model_worker_lost(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    swallows = [sys.executable, "-c", SWALLOWS, artifact.version, "fused"]
    commands = chain([None], repeat(swallows))  # a real worker, then ones that never answer
    # The fused graph: the one the replacements say they serve.
    fused = worker_settings(small_model, model_graph="fused")

    def spawn(args: Sequence[str]) -> tuple[Any, socket.socket]:
        command = next(commands)
        return spawn_worker(args) if command is None else spawn_worker(command=command)

    async def scenario() -> None:
        async with running_pool(small_model, 1, settings=fused, spawn=spawn) as pool:
            (first,) = pool.pids()
            stop(first)  # takes the job, never answers it
            job = asyncio.ensure_future(pool.predict("doomed"))
            await settled(lambda: pool.pending == 1 and value(pool, "textclf_queue_depth") == 0)
            os.kill(first, signal.SIGKILL)
            # The replacement takes the job as it says hello: the job's one retry.
            await until(lambda: first not in pool.pids() and pool.ready == 1, "the replacement ready")
            assert value(pool, "textclf_model_job_retries_total") == 1
            (second,) = pool.pids()
            os.kill(second, signal.SIGKILL)
            with pytest.raises(ServiceError) as err:
                await asyncio.wait_for(job, 60)
            assert err.value.error_type is ErrorType.MODEL_WORKER_LOST
            assert value(pool, "textclf_model_job_retries_total") == 1  # not a second retry

    asyncio.run(scenario())


def test_close_drains_queued_jobs_and_the_workers_exit(
    small_model: Built, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        pool = pool_of(small_model, 2)
        await pool.start()
        pids = pool.pids()
        jobs = [asyncio.ensure_future(pool.predict(f"drain {i}")) for i in range(6)]
        await settled(lambda: pool.pending == 6)
        await asyncio.wait_for(pool.close(), 60)
        assert all(j.done() and not j.exception() for j in jobs)
        assert not any(map(alive, pids))  # exited and reaped
        with pytest.raises(ServiceError):
            await pool.predict("after close")

    with caplog.at_level(logging.WARNING, logger="service.pool"):
        asyncio.run(scenario())
    assert not [r.getMessage() for r in caplog.records if "at shutdown" in r.getMessage()]  # each exited 0


def test_a_worker_that_cannot_load_the_model_fails_start(small_model: Built, tmp_path: Path) -> None:
    missing = worker_settings(small_model, model_dir=tmp_path / "missing")

    async def scenario() -> None:
        pool = pool_of(small_model, 2, missing, start_timeout=120)
        with pytest.raises(PoolStartError):
            await pool.start()
        assert pool.pids() == []

    asyncio.run(scenario())


def test_workers_yield_the_cpu_to_their_front(small_model: Built) -> None:
    async def scenario() -> list[int]:
        async with running_pool(
            small_model, 2, settings=worker_settings(small_model, model_worker_nice=3)
        ) as pool:
            return [os.getpriority(os.PRIO_PROCESS, pid) for pid in pool.pids()]

    front = os.getpriority(os.PRIO_PROCESS, 0)
    assert asyncio.run(scenario()) == [min(front + 3, 19)] * 2


def test_a_stuck_worker_is_killed_and_replaced_its_job_retried_and_the_one_sent_ahead_requeued(
    small_model: Built,
) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 1, job_timeout=0.5) as pool:
            victim = pool.pids()[0]
            stop(victim)
            started = time.monotonic()
            running = asyncio.ensure_future(pool.predict("the running one"))
            ahead = asyncio.ensure_future(pool.predict("the one sent ahead"))
            # Both with the one worker: the one it runs and the one sent ahead, none queued.
            await settled(lambda: pool.pending == 2 and value(pool, "textclf_queue_depth") == 0)
            await until(lambda: victim not in pool.pids(), "the stuck worker killed")
            # Not before its job's deadline (an order of events, whatever the machine's speed).
            assert time.monotonic() - started >= 0.5
            results = await asyncio.wait_for(asyncio.gather(running, ahead), 60)
            assert all(p.label in pool.labels for p, _ in results)
            assert value(pool, "textclf_model_job_timeouts_total") == 1
            assert value(pool, "textclf_model_worker_restarts_total") == 1
            # The running job is on its one retry; the one sent ahead never started: not a retry.
            assert value(pool, "textclf_model_job_retries_total") == 1
            assert not alive(victim)  # killed and reaped, not left stopped

    asyncio.run(scenario())


def test_a_job_stuck_on_its_retry_too_is_answered_model_timeout_and_nothing_hangs(small_model: Built) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 2, job_timeout=0.5) as pool:
            for pid in pool.pids():
                stop(pid)
            with pytest.raises(ServiceError) as err:
                await asyncio.wait_for(pool.predict("stuck twice"), 30)
            assert err.value.error_type is ErrorType.MODEL_TIMEOUT
            assert value(pool, "textclf_model_job_timeouts_total") == 2
            await until(lambda: pool.ready == 2)
            prediction, _ = await pool.predict("served by the replacements")
            assert prediction.label in pool.labels

    asyncio.run(scenario())


def test_pool_is_unready_while_no_worker_can_take_a_job(small_model: Built) -> None:
    async def scenario() -> None:
        async with running_pool(small_model, 1, job_timeout=0.3) as pool:
            assert (pool.ready, pool.unready_seconds()) == (1, 0.0)
            stop(pool.pids()[0])
            job = asyncio.ensure_future(pool.predict("wakes the watchdog"))
            await until(lambda: pool.ready == 0, "the stuck worker seen")
            # What liveness compares with its limit: it grows from when no worker could take a job.
            await until(lambda: pool.unready_seconds() > 0, "unready time counted")
            await asyncio.wait_for(job, 60)
            assert (pool.ready, pool.unready_seconds()) == (1, 0.0)

    asyncio.run(scenario())


def test_a_worker_serving_another_model_version_is_refused(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)

    async def scenario() -> None:
        worker = worker_settings(small_model)
        pool = ModelPool(
            1, artifact.labels, "not-" + artifact.version, Metrics(None), worker, start_timeout=120
        )
        with pytest.raises(PoolStartError, match=f"loaded model version {artifact.version}, not this front"):
            await pool.start()
        assert pool.pids() == []

    asyncio.run(scenario())


def test_the_workers_after_the_first_serve_the_graph_it_chose(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    commands = iter([[sys.executable, "-c", SWALLOWS, artifact.version, "unfused"]])
    given: list[list[str]] = []

    settings = worker_settings(small_model).arguments()

    def spawn(args: Sequence[str]) -> tuple[Any, socket.socket]:
        assert list(args[:2]) == settings  # every worker's
        given.append(list(args[2:]))
        return then_real_workers(commands)(args)

    async def scenario() -> None:
        async with running_pool(small_model, 3, spawn=spawn) as pool:
            # Whatever the real workers would time here, they are told the first one's graph.
            assert given == [[], ["--graph", "unfused"], ["--graph", "unfused"]]
            assert pool.graph_choice is not None and pool.graph_choice["rule"] == "timed"
            assert pool.graphs() == {"unfused": 3}
            # A replacement is told it too.
            os.kill(pool.pids()[1], signal.SIGKILL)
            await until(lambda: len(given) == 4 and pool.ready == 3, "the replacement")
            assert given[3] == ["--graph", "unfused"] and pool.graphs() == {"unfused": 3}

    asyncio.run(scenario())


def test_a_worker_serving_another_graph_than_the_pods_is_refused(
    small_model: Built, caplog: pytest.LogCaptureFixture
) -> None:
    artifact = load_artifact(small_model.artifact)
    # The first worker, told nothing, says it serves the unfused graph; the next one, also told
    # nothing (a front bug or a hand-started worker), is pinned to the fused one by its settings.
    commands = iter([[sys.executable, "-c", SWALLOWS, artifact.version, "unfused"]])

    def spawn(args: Sequence[str]) -> tuple[Any, socket.socket]:
        command = next(commands, None)
        fused = worker_settings(small_model, model_graph="fused")
        return spawn_worker(command=command) if command else spawn_worker(fused.arguments())

    async def scenario() -> None:
        with pytest.raises(PoolStartError, match="serves the fused graph, not the pod's unfused"):
            await running_pool(small_model, 2, spawn=spawn).__aenter__()

    with caplog.at_level(logging.ERROR, logger="service.pool"):
        asyncio.run(scenario())
    assert any("refused" in r.getMessage() for r in caplog.records)


# A worker out of step with its socket: it says the right hello, then answers each job with the
# next job's id (as a worker that lost a message would).
OUT_OF_STEP = """
import socket, sys
from service.protocol import Codec, JobReader, pack_hello
version, *labels, _, fd = sys.argv[1:]
sock = socket.socket(fileno=int(fd))
sock.sendall(pack_hello(version, {"served": "fused", "rule": "pinned"}))
jobs = JobReader(sock)
while (job := jobs.next()) is not None:
    sock.sendall(Codec(labels).failed(job[0] + 1))
"""


def test_a_reply_for_another_job_replaces_the_worker(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    out_of_step = [sys.executable, "-c", OUT_OF_STEP, artifact.version, *artifact.labels]
    commands = iter([out_of_step])  # the first worker, then real ones

    async def scenario() -> None:
        pool = ModelPool(
            1,
            artifact.labels,
            artifact.version,
            Metrics(None),
            worker_settings(small_model),
            spawn=then_real_workers(commands),
        )
        await pool.start()
        try:
            (liar,) = pool.pids()
            prediction, _ = await asyncio.wait_for(pool.predict("an honest question"), 60)
            assert prediction.label in pool.labels  # retried on the replacement, a real worker
            assert liar not in pool.pids() and not alive(liar)
            assert value(pool, "textclf_model_worker_restarts_total") == 1
            assert value(pool, "textclf_model_job_retries_total") == 1
        finally:
            await pool.close()

    asyncio.run(scenario())


# A worker that says the right hello and answers each job with its own id, but with a reply no
# model computes: NaN scores, an infinite logit, or one score too many or too few (the struct of a
# model with another label count).
BAD_REPLIES = """
import math, socket, sys
from service.prediction import Prediction, Timing
from service.protocol import Codec, JobReader, pack_hello
kind, version, *labels, _, fd = sys.argv[1:]
if kind == "one-score-more":
    labels.append("extra")
elif kind == "one-score-fewer":
    labels.pop()
n = len(labels)
scores, logits = (1 / n,) * n, (0.0,) * n
if kind == "nan-scores":
    scores = (math.nan,) * n
elif kind == "infinite-logit":
    logits = (math.inf,) + (0.0,) * (n - 1)
prediction = Prediction(labels[0], scores[0], scores, logits, 3, False)
codec = Codec(labels)
sock = socket.socket(fileno=int(fd))
sock.sendall(pack_hello(version, {"served": "fused", "rule": "pinned"}))
jobs = JobReader(sock)
while (job := jobs.next()) is not None:
    sock.sendall(codec.pack_reply(job[0], prediction, Timing(0.001, 0.001), 0.002))
"""


@pytest.mark.parametrize("kind", ["nan-scores", "infinite-logit", "one-score-more", "one-score-fewer"])
def test_a_reply_no_model_computes_replaces_the_worker_and_is_neither_served_nor_cached(
    small_model: Built, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    artifact = load_artifact(small_model.artifact)
    text = "an honest question"
    # The liar's hello says the fused graph: every worker after it serves that one.
    expected, _ = Classifier.from_artifact(artifact, graph="fused").predict(text)
    commands = iter([[sys.executable, "-c", BAD_REPLIES, kind, artifact.version, *artifact.labels]])
    liars: list[int] = []

    async def scenario() -> None:
        pool = ModelPool(
            1,
            artifact.labels,
            artifact.version,
            Metrics(None),
            worker_settings(small_model),
            spawn=then_real_workers(commands),  # the liar, then real ones
        )
        await pool.start()
        inference = CachedDispatch(pool, ResultCache(100, 1 << 20), "m", pool.version, pool.metrics, 32)
        try:
            liars.extend(pool.pids())
            outcome = await asyncio.wait_for(inference.classify(text), 60)
            # Retried on the replacement, a real worker: its answer is served and cached, not the liar's.
            assert not outcome.cached and outcome.prediction.label == expected.label
            assert outcome.prediction.scores == pytest.approx(expected.scores, abs=1e-6)
            assert inference.cache.get((pool.version, text)) == outcome.prediction
            assert liars[0] not in pool.pids() and not alive(liars[0])
            assert value(pool, "textclf_model_worker_restarts_total") == 1
            assert value(pool, "textclf_model_job_retries_total") == 1
        finally:
            await pool.close()

    with caplog.at_level(logging.ERROR, logger="service.pool"):
        asyncio.run(scenario())
    said = [r.getMessage() for r in caplog.records if f"model worker {liars[0]} sent" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith(": replacing it"), said


def test_a_replacement_that_never_says_hello_is_killed_and_replaced_in_turn(
    small_model: Built, caplog: pytest.LogCaptureFixture
) -> None:
    spawned: list[int] = []
    spawned_at: list[float] = []  # monotonic, just before each start

    def spawn(args: Sequence[str]) -> tuple[subprocess.Popen[bytes], socket.socket]:
        spawned_at.append(time.monotonic())
        process, sock = spawn_worker(args)
        if len(spawned) == 1:  # the first replacement: a real worker frozen before its hello
            stop(process.pid)
        spawned.append(process.pid)
        return process, sock

    async def scenario() -> None:
        async with running_pool(small_model, 1, spawn=spawn) as pool:
            os.kill(spawned[0], signal.SIGKILL)
            await until(lambda: len(spawned) == 2 and pool.pids() == spawned[1:2], "the first replacement")
            assert pool.ready == 0
            timeout = pool.hello_timeout
            await until(lambda: spawned[1] not in pool.pids(), "the frozen replacement killed", timeout + 60)
            # Given the whole deadline from its start (the start-up's load time x the margin, or
            # the floor), not killed early (an order of events, whatever the machine's speed); the
            # next replacement gets twice as long.
            assert time.monotonic() - spawned_at[1] >= timeout
            assert pool.hello_timeout == 2 * timeout
            # Replaced after the growing delay, by a worker that says hello: back to full strength,
            # and to the first deadline.
            await until(lambda: len(spawned) == 3 and pool.ready == 1, "the second replacement ready")
            assert pool.hello_timeout == timeout
            assert pool.pids() == spawned[2:] and not alive(spawned[1])
            assert value(pool, "textclf_model_worker_restarts_total") == 2  # the killed one, the frozen one
            prediction, _ = await asyncio.wait_for(pool.predict("served by the third worker"), 60)
            assert prediction.label in pool.labels

    with caplog.at_level(logging.ERROR, logger="service.pool"):
        asyncio.run(scenario())
    said = [r.getMessage() for r in caplog.records if "not ready" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"model worker {spawned[1]} not ready"), said


def test_the_largest_texts_sent_ahead_and_queued_are_not_spliced(small_model: Built) -> None:
    # The most the settings allow: 1,000,000 characters, up to 4 MB of UTF-8, many times what a
    # socket takes in one send, so each job is sent in pieces while the next waits behind it.
    longest = Settings.model_fields["max_text_chars"].metadata
    limit = next(m.le for m in longest if getattr(m, "le", None) is not None)
    texts = ["🙂 great " * (limit // 8), "awful ✗ " * (limit // 8), "a" * limit, "plain tweet", "é" * limit]
    assert max(map(len, texts)) == limit

    async def scenario() -> None:
        async with running_pool(small_model, 1) as pool:
            results = await asyncio.wait_for(asyncio.gather(*(pool.predict(t) for t in texts)), 120)
            assert pool.graph_choice is not None
        classifier = Classifier.from_artifact(
            load_artifact(small_model.artifact), graph=pool.graph_choice["served"]
        )
        for text, (prediction, _) in zip(texts, results, strict=True):
            expected, _ = classifier.predict(text)
            assert prediction.scores == pytest.approx(expected.scores, abs=1e-6)
            assert prediction.tokens == expected.tokens

    asyncio.run(scenario())


def test_close_answers_what_stuck_workers_hold_then_kills_them_at_the_end_of_the_shutdown_clock(
    small_model: Built, caplog: pytest.LogCaptureFixture
) -> None:
    pids: list[int] = []
    # The workers' states from /proc at the moment each job was answered.
    states_when_answered: list[list[str]] = []

    async def scenario() -> None:
        pool = pool_of(small_model, 2, shutdown_seconds=2)
        await pool.start()
        pids.extend(pool.pids())
        for pid in pids:
            stop(pid)
        jobs = [asyncio.ensure_future(pool.predict(f"never computed {i}")) for i in range(5)]
        await settled(lambda: pool.pending == 5)
        for job in jobs:
            job.add_done_callback(lambda _: states_when_answered.append([state(pid) for pid in pids]))
        # Stuck workers never exit on their own: only the clock can end this (the bound is a guard).
        await asyncio.wait_for(pool.close(), 60)
        for job in jobs:
            error = job.exception()
            assert isinstance(error, ServiceError) and error.error_type is ErrorType.NOT_READY
        # Every job answered first, while its worker still held it (stopped, not killed yet) ...
        assert states_when_answered == [["T", "T"]] * 5
        assert not any(map(alive, pids))  # ... then the workers killed and reaped

    with caplog.at_level(logging.WARNING, logger="service.pool"):
        asyncio.run(scenario())
    ended = {r.args[0]: r.args[1] for r in caplog.records if "at shutdown" in r.getMessage()}  # type: ignore[index]
    assert ended == {pid: -signal.SIGKILL for pid in pids}


def test_a_model_worker_reads_only_what_its_front_tells_it(
    small_model: Built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Settings the front refuses (a tokens file gone since start-up, head bounds that do not fit):
    # none of a worker's business, so a worker, a replacement above all, still starts and serves.
    monkeypatch.setenv("TEXTCLF_API_TOKENS_FILE", str(tmp_path / "gone"))
    monkeypatch.setenv("TEXTCLF_MAX_HEAD_BYTES", "1024")
    # Nor does it read its own settings from the environment: its front's --settings say where.
    monkeypatch.setenv("TEXTCLF_MODEL_DIR", str(tmp_path / "missing"))

    async def scenario() -> None:
        async with running_pool(small_model, 1) as pool:
            prediction, _ = await asyncio.wait_for(pool.predict("a worker with its own settings"), 60)
            assert prediction.label in pool.labels

    asyncio.run(scenario())
