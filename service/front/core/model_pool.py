"""A front's model workers: one FIFO of misses, each sent to whichever worker is idle (M/G/N).

Why: with a model in every HTTP process, a request waits behind a long text on its own busy
process while another core idles (BENCHMARKS.md). Here every miss of the front waits in one
queue and the first worker to finish takes the next one, whatever connection it came from. A
worker gets a job only when idle, over its own Unix socket, and the reply wakes the event loop
through `add_reader`: no thread, no pickle, two small writes and two reads per miss.

Nothing a worker does can leave a job unanswered. A worker that dies is replaced; the job it
held is retried once on another worker, then answered 503 `model_worker_lost`. A job that runs
past the job timeout (a hung worker: a deadlock, a stalled page-in, a frozen cgroup) gets its
worker killed and replaced the same way, and 503 `model_timeout` if its retry times out too; the
job sent ahead to it never started, so it goes back to the queue as it was. A worker whose reply
names another job or is not one a model computes (service.protocol.BadReply: NaN scores, another
label count), or whose model is not the front's, is replaced too: nothing it says is trusted, and
its job is retried as for a worker lost. A replacement that does not say hello in time (it hangs
loading) is killed and replaced with the growing delay, so the pool does not stay a worker short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import subprocess
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service.front.core.cached_dispatch import Result, moving_average
from service.front.core.errors import ErrorType, ServiceError, queue_timeout
from service.front.core.worker_link import WorkerLink, reap, spawn_worker
from service.front.telemetry.metrics import Metrics
from service.prediction import Prediction, Timing
from service.protocol import BadReply, Codec, Hello, Reply, pack_job, take_hello
from service.worker_settings import WorkerSettings

log = logging.getLogger("service.pool")
READ_CHUNK = 1 << 16
# A replacement that dies before READY (a broken model file, no memory) waits longer each time.
MAX_RESPAWN_DELAY_SECONDS = 30.0
# The watchdog's period: how late past its deadline a hung job, or a queued job nothing else
# wakes, is answered.
WATCH_SECONDS = 0.1
# A replacement that has not said hello this long after its start hangs loading (a stalled page-in,
# a frozen cgroup, a debugger): it is killed and replaced. The deadline is the start-up's own load
# time (the workers started at once, one per core, after the first that times the model's graphs:
# a replacement loads as they do) times the margin, which covers a replacement loading
# beside busy workers on a shared core; the floor covers a start-up from a warm page cache that a
# replacement may not find (a cold import of the model runtime alone takes seconds).
HELLO_MARGIN = 10.0
HELLO_FLOOR_SECONDS = 10.0
# Of the shutdown budget, what is kept after the last jobs are answered to close the sockets and
# reap the workers (at most half of it).
REAP_SECONDS = 1.0


class PoolStartError(RuntimeError):
    """A model worker exited before it was ready: the model cannot be served."""


@dataclass(eq=False, slots=True)
class _Job:
    id: int
    text: str
    future: asyncio.Future[tuple[Prediction, Timing]]
    submitted: float
    dispatched: float = 0.0
    retried: bool = False


Worker = WorkerLink[_Job]


class ModelPool:
    """Model worker processes of one front, fed from one FIFO."""

    def __init__(
        self,
        size: int,
        labels: Sequence[str],
        version: str,
        metrics: Metrics,
        worker_settings: WorkerSettings,
        queue_timeout: float = math.inf,
        job_timeout: float = math.inf,
        shutdown_seconds: float = 25.0,
        start_timeout: float = 300.0,
        spawn: Callable[[Sequence[str]], tuple[subprocess.Popen[bytes], socket.socket]] = spawn_worker,
        thresholds: Sequence[float] | None = None,
        choose_graph: bool = True,
    ) -> None:
        self.size = size
        self.labels = tuple(labels)
        self.version = version
        self.metrics = metrics
        self.queue_timeout = queue_timeout
        self.job_timeout = job_timeout
        self.shutdown_seconds = shutdown_seconds
        self.start_timeout = start_timeout
        self._spawn_process = spawn  # tests start misbehaving workers through it
        # The model has graphs to time: the first worker times them alone, on a quiet machine, and
        # every worker started after serves the graph it chose (one graph a pod, one answer a text).
        self._choose_graph = choose_graph
        # A worker reads no TEXTCLF_* variable: all it is told is this (service.worker_settings).
        self._settings_args = worker_settings.arguments()
        self._worker_args: list[str] = []  # given to every worker started after the first hello
        self._codec = Codec(self.labels, thresholds)  # a multi-label model's
        self._workers: list[Worker] = []
        self._idle: list[Worker] = []
        self._queue: deque[_Job] = deque()
        self._next_id = 1
        self._pending = 0  # texts asked for and not answered yet
        self._closing = False
        self._respawns: set[asyncio.Task[None]] = set()
        self._exited: list[subprocess.Popen[bytes]] = []  # lost workers, reaped by _replace or close
        self._failed_starts = 0
        # How long start()'s last workers took to be ready: a replacement loads as they do.
        self.load_seconds = math.inf
        self.hello_timeout = math.inf  # a replacement not ready this long after its start is killed
        self._hello_base = math.inf  # what hello_timeout starts at, and returns to at each hello
        self._unready_since: float | None = None
        self._shutdown_at: float | None = None  # monotonic; set when the shutdown clock starts
        self._give_up_at = math.inf  # monotonic; unanswered jobs get 503 from then on
        self._give_up: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._busy = metrics.counter(metrics.model_worker_busy)
        self.job_seconds = 0.0  # a moving average of the workers' own time per job
        self.graph_choice: dict[str, Any] | None = None  # how the first worker ready chose its graph
        metrics.on_publish(lambda: metrics.queue_depth.set(len(self._queue)))

    @property
    def ready(self) -> int:
        """Workers with the model loaded and warm (a worker lost before READY is already removed)."""
        return sum(1 for w in self._workers if w.hello.done())

    @property
    def pending(self) -> int:
        """Texts waiting for a worker or running on one."""
        return self._pending

    def graphs(self) -> dict[str, int]:
        """How many ready workers serve each of the model's graphs (all the first worker's)."""
        return dict(Counter(w.graph for w in self._workers if w.hello.done()))

    def unready_seconds(self) -> float:
        """How long no worker has been able to take a job; 0 while one can."""
        return 0.0 if self._unready_since is None else time.monotonic() - self._unready_since

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.pid for w in self._workers]

    async def start(self) -> None:
        """Start every worker and wait until all are ready; raise PoolStartError if one dies first."""
        began = started = time.monotonic()
        self._loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.start_timeout):
                first = [self._spawn() for _ in range(1 if self._choose_graph else self.size)]
                await asyncio.gather(*(w.hello for w in first))
                if len(first) < self.size:
                    # A replacement loads as these do (told the graph, no trial): time them alone.
                    started = time.monotonic()
                    await asyncio.gather(*(self._spawn().hello for _ in range(self.size - len(first))))
        except (PoolStartError, TimeoutError) as err:
            await self.close()
            raise PoolStartError(f"model workers did not start: {err or 'timed out'}") from None
        self.load_seconds = time.monotonic() - started
        self._hello_base = max(HELLO_FLOOR_SECONDS, HELLO_MARGIN * self.load_seconds)
        self.hello_timeout = self._hello_base
        log.info(
            "model workers ready in %.1f s (%d); a replacement not ready within %.1f s is killed",
            time.monotonic() - began,
            self.size,
            self.hello_timeout,
        )
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        self._publish()

    async def predict(self, text: str) -> tuple[Prediction, Timing]:
        """Classify one text on the next idle worker, first come, first served."""
        if self._closing:
            raise ServiceError(ErrorType.NOT_READY, "shutting down")
        # The loop kept from start(): asyncio asks the kernel for the process id to find the running one.
        future: asyncio.Future[tuple[Prediction, Timing]] = self._loop.create_future()
        self._queue.append(_Job(self._next_id, text, future, time.perf_counter()))
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
        self._pending += 1
        try:
            self._dispatch()
            return await future
        finally:
            self._pending -= 1

    async def predict_many(self, texts: Sequence[str]) -> list[Result]:
        """Each text is its own job, spread over every idle worker; a text that failed holds its error."""
        if len(texts) == 1:
            try:
                return [await self.predict(texts[0])]
            except Exception as err:
                return [err]
        results = await asyncio.gather(*(self.predict(t) for t in texts), return_exceptions=True)
        return [r if not isinstance(r, BaseException) else _as_error(r) for r in results]

    def begin_shutdown(self, seconds: float) -> None:
        """Start the shutdown clock (once): jobs unanswered near its end get 503, and close() has
        the workers reaped by then."""
        if self._shutdown_at is not None:
            return
        self._shutdown_at = time.monotonic() + seconds
        delay = max(seconds - min(REAP_SECONDS, seconds / 2), 0.0)
        self._give_up_at = time.monotonic() + delay
        self._give_up = asyncio.get_running_loop().call_later(delay, self._answer_the_rest)

    async def close(self) -> None:
        """Finish the queued and running jobs within the shutdown clock (started here if no signal
        started it), answer any left 503, close the sockets (workers exit on end of file), reap."""
        self.begin_shutdown(self.shutdown_seconds)
        assert self._shutdown_at is not None
        while (self._queue or any(w.jobs for w in self._workers)) and time.monotonic() < self._give_up_at:
            await asyncio.sleep(0.01)
        self._answer_the_rest()
        for task in [*self._respawns, *([self._watchdog] if self._watchdog else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._give_up is not None:
            self._give_up.cancel()
        workers, self._workers, self._idle = self._workers, [], []
        for worker in workers:
            worker.detach()
        left = max(self._shutdown_at - time.monotonic(), 0.1)
        processes = [w.process for w in workers] + self._exited
        codes = await asyncio.gather(*(reap(p, left) for p in processes))
        for process, code in zip(processes, codes, strict=True):
            if code != 0:  # killed at the end of the shutdown clock, or it had died already
                log.warning("model worker %d ended with %s at shutdown", process.pid, code)
        self._publish()

    def _answer_the_rest(self) -> None:
        """The shutdown deadline: every job not answered yet gets 503, so none is dropped unanswered."""
        self._closing = True
        jobs = [*self._queue, *(job for w in self._workers for job in w.jobs)]
        self._queue.clear()
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(ServiceError(ErrorType.NOT_READY, "shutting down; retry"))

    # Event-loop callbacks below: they never block.

    def _spawn(self) -> Worker:
        process, sock = self._spawn_process([*self._settings_args, *self._worker_args])
        worker: Worker = WorkerLink(process, sock, asyncio.get_running_loop().create_future())
        self._workers.append(worker)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable, worker)
        return worker

    def _dispatch(self) -> None:
        queue, idle = self._queue, self._idle
        while queue:
            job = queue.popleft()
            if job.future.done():  # cancelled while it waited
                continue
            now = time.perf_counter()
            if now - job.submitted > self.queue_timeout:
                job.future.set_exception(queue_timeout(now - job.submitted))
                continue
            # A worker is taken only for a live job: one taken for a dead one would be lost.
            worker = idle.pop() if idle else self._next_to_finish()
            if worker is None:
                queue.appendleft(job)
                break
            if not worker.jobs:
                worker.started = now
            worker.jobs.append(job)
            job.dispatched = now
            worker.send(pack_job(job.id, job.text))

    def _next_to_finish(self) -> Worker | None:
        """With every worker busy, the one whose job started first gets the next job in advance.

        It then starts that job the moment it replies, instead of waiting for this loop to read
        the reply and send one (the loop may be parsing requests meanwhile).
        """
        first = None
        for worker in self._workers:  # on every dispatch while all are busy: no lambda, no list
            if len(worker.jobs) == 1 and (first is None or worker.started < first.started):
                first = worker
        return first

    def _on_readable(self, worker: Worker) -> None:
        try:
            data = worker.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._retire(worker, ErrorType.MODEL_WORKER_LOST, f"model worker {worker.pid} exited", True)
            return
        buffer, size = worker.received, self._codec.reply_size
        buffer += data
        try:
            if not worker.hello.done():
                hello = take_hello(buffer)
                if hello is None:
                    return
                if hello.version != self.version:
                    self._refuse(
                        worker, f"loaded model version {hello.version}, not this front's {self.version}"
                    )
                    return
                if self.graph_choice is not None and hello.served != self.graph_choice["served"]:
                    self._refuse(
                        worker,
                        f"serves the {hello.served} graph, not the pod's {self.graph_choice['served']}",
                    )
                    return
                self._on_hello(worker, hello)
            while len(buffer) >= size and worker.attached:
                reply = self._codec.unpack_reply(memoryview(buffer)[:size])
                del buffer[:size]
                self._on_reply(worker, reply)
            if buffer and worker.attached:  # part of a reply: a short one (fewer labels) never ends
                self._codec.check_start(buffer)
        except BadReply as err:
            self._distrust(worker, f"model worker {worker.pid} sent {err}")

    def _on_hello(self, worker: Worker, hello: Hello) -> None:
        worker.graph = hello.served
        if self.graph_choice is None:  # the first worker ready: its graph is every later worker's
            self.graph_choice, self._worker_args = hello.graph, ["--graph", hello.served]
        worker.hello.set_result(None)
        self._failed_starts = 0
        self.hello_timeout = self._hello_base
        self._idle.append(worker)
        self._publish()
        self._dispatch()

    def _refuse(self, worker: Worker, why: str) -> None:
        """A worker that loaded another model (its folder was rebuilt in place), or another graph of
        it, never serves."""
        reason = f"model worker {worker.pid} {why}"
        log.error("%s: refused (restart the service to serve the new model)", reason)
        worker.kill()
        self._retire(worker, ErrorType.MODEL_WORKER_LOST, reason, True)

    def _on_reply(self, worker: Worker, reply: Reply) -> None:
        job = worker.jobs[0] if worker.jobs else None
        if job is None or reply.job_id != job.id:
            # Out of step with its socket: whatever else it says may belong to another text.
            expected = job.id if job else "none"
            self._distrust(worker, f"model worker {worker.pid} answered job {reply.job_id}, not {expected}")
            return
        worker.jobs.popleft()
        if worker.jobs:
            worker.started = time.perf_counter()  # it started the job sent ahead as it replied
        else:
            self._idle.append(worker)
        self._busy.inc(reply.busy)
        self.job_seconds = moving_average(self.job_seconds, reply.busy)
        if not job.future.done():
            if reply.result is None:
                error = RuntimeError(f"model worker {worker.pid} failed job {job.id}: its log has why")
                job.future.set_exception(error)
            else:
                prediction, timing = reply.result
                # Queue: everything but the worker's own time (waiting here or in its socket, and the IPC).
                queued = max(time.perf_counter() - job.submitted - reply.busy, 0.0)
                job.future.set_result((prediction, Timing(timing.tokenize, timing.inference, queued)))
        self._dispatch()

    def _distrust(self, worker: Worker, reason: str) -> None:
        """A worker out of step or broken: whatever else it says may be wrong too. It is killed and
        replaced; its job is retried on another worker, never answered with what it sent."""
        log.error("%s: replacing it", reason)
        worker.kill()
        self._retire(worker, ErrorType.MODEL_WORKER_LOST, reason, True)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            self._check_deadlines()

    def _check_deadlines(self) -> None:
        """Replace each worker whose running job is past the job timeout, and each replacement not
        ready within the hello timeout; expire queued jobs."""
        deadline = time.monotonic() - self.hello_timeout
        for worker in [w for w in self._workers if not w.hello.done() and w.spawned < deadline]:
            self._on_readable(worker)  # a hello already waiting in the socket is taken
            if worker.attached and not worker.hello.done():
                reason = f"model worker {worker.pid} not ready within {self.hello_timeout:.1f} s"
                # A load that really takes longer (a cold page cache, a busy node) must get there:
                # the next replacement has twice as long, up to the start-up's own bound.
                self.hello_timeout = min(2 * self.hello_timeout, max(self.start_timeout, self._hello_base))
                log.error(
                    "%s of its start (%g x the %.1f s the pool's workers took to load, at least %g s): "
                    "killing it; the next has %.1f s",
                    reason,
                    HELLO_MARGIN,
                    self.load_seconds,
                    HELLO_FLOOR_SECONDS,
                    self.hello_timeout,
                )
                worker.kill()
                self._retire(worker, ErrorType.MODEL_WORKER_LOST, reason, False)
        for worker in [w for w in self._workers if w.jobs and self._overdue(w)]:
            self._on_readable(worker)  # a reply already waiting in the socket is taken, not lost
            if worker.attached and worker.jobs and self._overdue(worker):
                ran = time.perf_counter() - worker.started
                log.error(
                    "model worker %d ran job %d for %.1f s (job timeout %g s): killing and replacing it",
                    worker.pid,
                    worker.jobs[0].id,
                    ran,
                    self.job_timeout,
                )
                self.metrics.job_timeouts.inc()
                worker.kill()
                reason = f"the model took over {self.job_timeout:g} s on this text, twice; retry later"
                self._retire(worker, ErrorType.MODEL_TIMEOUT, reason, False)
        if self._queue:
            self._dispatch()  # answers jobs past the queue timeout even when nothing else wakes the queue

    def _overdue(self, worker: Worker) -> bool:
        return time.perf_counter() - worker.started > self.job_timeout

    def _retire(self, worker: Worker, failure: ErrorType, reason: str, ahead_may_have_run: bool) -> None:
        """Take a worker out of service and start its replacement. The job it was running is
        retried once (then answered `failure`); the jobs sent ahead go back to the queue, retried
        like the running one when the worker may have started them (it died unobserved)."""
        worker.detach()
        self._exited.append(worker.process)
        if worker in self._workers:
            self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        if not worker.hello.done():
            worker.hello.set_exception(PoolStartError(reason))
            worker.hello.exception()  # retrieved: nobody awaits a replacement's hello
            self._failed_starts += 1
        held = list(worker.jobs)
        worker.jobs.clear()
        for position in reversed(range(len(held))):  # back at the head of the queue, in their order
            job = held[position]
            ran = position == 0 or ahead_may_have_run
            if job.future.done():
                continue
            if ran and job.retried:
                message = (
                    reason if failure is ErrorType.MODEL_TIMEOUT else "the model worker computing it exited"
                )
                job.future.set_exception(ServiceError(failure, message))
                continue
            if ran:
                job.retried = True
                self.metrics.job_retries.inc()
            self._queue.appendleft(job)
        if not self._closing:
            self.metrics.model_worker_restarts.inc()
            task = asyncio.get_running_loop().create_task(self._replace(worker))
            self._respawns.add(task)
            task.add_done_callback(self._respawns.discard)
        self._publish()
        self._dispatch()

    async def _replace(self, dead: Worker) -> None:
        code = await reap(dead.process, timeout=10.0)
        self._exited.remove(dead.process)
        delay = min(MAX_RESPAWN_DELAY_SECONDS, 2.0 ** (self._failed_starts - 1)) if self._failed_starts else 0
        log.warning("model worker %d exited (%s); replacing it in %.0f s", dead.pid, code, delay)
        await asyncio.sleep(delay)
        if not self._closing:
            self._spawn()

    def _publish(self) -> None:
        ready = self.ready
        self.metrics.workers_ready.set(ready)
        if ready:
            self._unready_since = None
        elif self._unready_since is None:
            self._unready_since = time.monotonic()


def _as_error(raised: BaseException) -> Exception:
    """A text's failure as a value; a cancellation is not one and goes on up."""
    if isinstance(raised, Exception):
        return raised
    raise raised
