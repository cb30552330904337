"""A front's model workers: one FIFO of misses, each sent to whichever worker is idle (M/G/N).

Why: with a model in every HTTP process, a request waits behind a long text on its own busy
process while another core idles (BENCHMARKS.md). Here every miss of the front waits in one
queue and the first worker to finish takes the next one, whatever connection it came from. A
worker gets a job only when idle, over its own Unix socket, and the reply wakes the event loop
through `add_reader`: no thread, no pickle, two small writes and two reads per miss.

A worker that dies is replaced; the job it held is retried once on another worker, then
answered 503 `model_worker_lost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.classifier import Prediction, Timing
from service.errors import ErrorType, ServiceError, queue_timeout
from service.metrics import Metrics
from service.protocol import Codec, Reply, Status, pack_job

log = logging.getLogger("service.pool")
READ_CHUNK = 1 << 16
# A replacement that dies before READY (a broken model file, no memory) waits longer each time.
MAX_RESPAWN_DELAY_SECONDS = 30.0


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


@dataclass(eq=False, slots=True)
class _Worker:
    process: subprocess.Popen[bytes]
    sock: socket.socket
    ready: asyncio.Future[None]
    buffer: bytearray = field(default_factory=bytearray)
    pending: bytes = b""  # the unsent rest of a job too large for one send()
    jobs: deque[_Job] = field(default_factory=deque)  # sent, in order; the first one is running


def spawn_worker() -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start `python -m service.model_worker` with one end of a new socket pair."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with theirs:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.model_worker", "--fd", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
        )
    ours.setblocking(False)
    return process, ours


class ModelPool:
    """Model worker processes of one front, fed from one FIFO."""

    def __init__(
        self,
        size: int,
        labels: Sequence[str],
        metrics: Metrics,
        queue_timeout: float = math.inf,
        start_timeout: float = 300.0,
    ) -> None:
        self.size = size
        self.labels = tuple(labels)
        self.metrics = metrics
        self.queue_timeout = queue_timeout
        self.start_timeout = start_timeout
        self._codec = Codec(len(self.labels))
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._queue: deque[_Job] = deque()
        self._next_id = 1
        self._closing = False
        self._respawns: set[asyncio.Task[None]] = set()
        self._exited: list[subprocess.Popen[bytes]] = []  # lost workers, reaped by _replace or close
        self._failed_starts = 0
        self._busy = metrics.model_worker_busy
        self._depth = metrics.queue_depth

    @property
    def ready(self) -> int:
        """Workers with the model loaded and warm (a worker lost before READY is already removed)."""
        return sum(1 for w in self._workers if w.ready.done())

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.process.pid for w in self._workers]

    async def start(self) -> None:
        """Start every worker and wait until all are ready; raise PoolStartError if one dies first."""
        workers = [self._spawn() for _ in range(self.size)]
        try:
            async with asyncio.timeout(self.start_timeout):
                await asyncio.gather(*(w.ready for w in workers))
        except (PoolStartError, TimeoutError) as err:
            await self.close()
            raise PoolStartError(f"model workers did not start: {err or 'timed out'}") from None
        self._publish()

    async def predict(self, text: str) -> tuple[Prediction, Timing]:
        """Classify one text on the next idle worker, first come, first served."""
        if self._closing:
            raise ServiceError(ErrorType.NOT_READY, "shutting down")
        future: asyncio.Future[tuple[Prediction, Timing]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(self._next_id, text, future, time.perf_counter()))
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
        self._dispatch()
        return await future

    async def predict_many(self, texts: Sequence[str]) -> list[tuple[Prediction, Timing]]:
        """Each text is its own job: a batch spreads over every idle worker."""
        if len(texts) == 1:
            return [await self.predict(texts[0])]
        return list(await asyncio.gather(*(self.predict(t) for t in texts)))

    async def close(self, drain_timeout: float = 30.0) -> None:
        """Finish the queued and running jobs, then close the sockets: the workers exit on EOF."""
        self._closing = True
        deadline = time.monotonic() + drain_timeout
        while (self._queue or any(w.jobs for w in self._workers)) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for task in self._respawns:
            task.cancel()
        workers, self._workers, self._idle = self._workers, [], []
        for worker in workers:
            self._detach(worker)
        for process in [w.process for w in workers] + self._exited:
            await _reap(process, timeout=10.0)
        self._publish()

    # Event-loop callbacks below: they never block.

    def _spawn(self) -> _Worker:
        process, sock = spawn_worker()
        worker = _Worker(process, sock, asyncio.get_running_loop().create_future())
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
            worker.jobs.append(job)
            job.dispatched = now
            self._send(worker, pack_job(job.id, job.text))
        self._depth.set(len(queue))

    def _next_to_finish(self) -> _Worker | None:
        """With every worker busy, the one whose job started first gets the next job in advance.

        It then starts that job the moment it replies, instead of waiting for this loop to read
        the reply and send one (the loop may be parsing requests meanwhile).
        """
        running = [w for w in self._workers if len(w.jobs) == 1]
        return min(running, key=lambda w: w.jobs[0].dispatched, default=None)

    def _send(self, worker: _Worker, data: bytes) -> None:
        try:
            sent = worker.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # the worker is gone: its reader sees EOF and handles the job
        if sent < len(data):
            worker.pending = data[sent:]
            asyncio.get_running_loop().add_writer(worker.sock.fileno(), self._flush, worker)

    def _flush(self, worker: _Worker) -> None:
        try:
            sent = worker.sock.send(worker.pending)
        except BlockingIOError:
            return
        except OSError:
            sent = len(worker.pending)
        worker.pending = worker.pending[sent:]
        if not worker.pending:
            asyncio.get_running_loop().remove_writer(worker.sock.fileno())

    def _on_readable(self, worker: _Worker) -> None:
        try:
            data = worker.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost(worker)
            return
        buffer, size = worker.buffer, self._codec.reply_size
        buffer += data
        while len(buffer) >= size:
            reply = self._codec.unpack_reply(memoryview(buffer)[:size])
            del buffer[:size]
            self._on_reply(worker, reply)

    def _on_reply(self, worker: _Worker, reply: Reply) -> None:
        if reply.status is Status.READY:
            worker.ready.set_result(None)
            self._failed_starts = 0
            self._idle.append(worker)
            self._publish()
            self._dispatch()
            return
        job = worker.jobs.popleft() if worker.jobs else None
        if not worker.jobs:
            self._idle.append(worker)
        self._busy.inc(reply.busy)
        if job is not None and not job.future.done():
            if reply.status is Status.OK:
                job.future.set_result(self._prediction(job, reply))
            else:
                job.future.set_exception(
                    RuntimeError(f"model worker {worker.process.pid} failed job {job.id}: its log has why")
                )
        self._dispatch()

    def _prediction(self, job: _Job, reply: Reply) -> tuple[Prediction, Timing]:
        prediction = Prediction.from_logits(self.labels, reply.logits, reply.tokens, reply.truncated)
        # Queue: everything but the worker's own time (waiting here or in its socket, and the IPC).
        queued = time.perf_counter() - job.submitted - reply.busy
        return prediction, Timing(reply.tokenize, reply.inference, max(queued, 0.0))

    def _lost(self, worker: _Worker) -> None:
        self._detach(worker)
        self._exited.append(worker.process)
        if worker in self._workers:
            self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        if not worker.ready.done():
            worker.ready.set_exception(PoolStartError(f"model worker {worker.process.pid} exited"))
            worker.ready.exception()  # retrieved: nobody awaits a replacement's readiness
            self._failed_starts += 1
        for job in reversed(worker.jobs):  # back at the head of the queue, in their order
            if job.future.done():
                continue
            if job.retried:
                job.future.set_exception(
                    ServiceError(ErrorType.MODEL_WORKER_LOST, "the model worker computing this text exited")
                )
            else:
                job.retried = True
                self._queue.appendleft(job)
        if not self._closing:
            self.metrics.model_worker_restarts.inc()
            task = asyncio.get_running_loop().create_task(self._replace(worker))
            self._respawns.add(task)
            task.add_done_callback(self._respawns.discard)
        self._publish()
        self._dispatch()

    async def _replace(self, dead: _Worker) -> None:
        code = await _reap(dead.process, timeout=10.0)
        self._exited.remove(dead.process)
        delay = min(MAX_RESPAWN_DELAY_SECONDS, 2.0 ** (self._failed_starts - 1)) if self._failed_starts else 0
        log.warning("model worker %d exited (%s); replacing it in %.0f s", dead.process.pid, code, delay)
        await asyncio.sleep(delay)
        if not self._closing:
            self._spawn()

    def _detach(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        fd = worker.sock.fileno()
        if fd >= 0:
            loop.remove_reader(fd)
            loop.remove_writer(fd)
            worker.sock.close()

    def _publish(self) -> None:
        self.metrics.workers_ready.set(self.ready)


async def _reap(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait for a worker to exit without blocking the loop; kill it after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, 9)
        return await asyncio.to_thread(process.wait)
    return process.returncode
