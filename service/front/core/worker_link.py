"""One model worker process as its front sees it: the process, its socket, the bytes still to
send, the replies read so far and the jobs it holds. Sending never blocks the event loop and
never reorders bytes: what one send() did not take waits in `outgoing`, and anything sent later
goes behind it (a job sent ahead must not be spliced into the middle of a large one).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Job = TypeVar("Job")


MODEL_WORKER = (sys.executable, "-m", "service.model_worker")


def spawn_worker(
    args: Sequence[str] = (), command: Sequence[str] = MODEL_WORKER
) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start `command ARGS --fd N` (a model worker) with N one end of a new socket pair."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with theirs:
        process = subprocess.Popen(
            [*command, *args, "--fd", str(theirs.fileno())], pass_fds=(theirs.fileno(),)
        )
    ours.setblocking(False)
    return process, ours


@dataclass(eq=False, slots=True)
class WorkerLink(Generic[Job]):
    """A model worker process and the front's end of its socket."""

    process: subprocess.Popen[bytes]
    sock: socket.socket
    hello: asyncio.Future[None]  # done once the worker said which model it loaded (warm), or failed
    received: bytearray = field(default_factory=bytearray)
    outgoing: bytearray = field(default_factory=bytearray)
    jobs: deque[Job] = field(default_factory=deque)  # sent, in order; the first one is running
    started: float = 0.0  # perf_counter() when the running job (jobs[0]) started
    spawned: float = field(default_factory=time.monotonic)  # when its process was started
    graph: str = ""  # which of the model's graphs it serves, from its hello

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    @property
    def attached(self) -> bool:
        """Whether its socket is still open (a retired worker's is closed)."""
        return self.sock.fileno() >= 0

    def send(self, data: bytes) -> None:
        """Queue `data` behind anything not yet sent and send what the socket takes now."""
        if self.outgoing:  # the writer callback is armed and sends it in order
            self.outgoing += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # the worker is gone: its reader sees end of file and handles its jobs
        if sent < len(data):
            self.outgoing += memoryview(data)[sent:]
            asyncio.get_running_loop().add_writer(self.sock.fileno(), self._flush)

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.outgoing)
        except BlockingIOError:
            return
        except OSError:
            sent = len(self.outgoing)
        del self.outgoing[:sent]
        if not self.outgoing:
            asyncio.get_running_loop().remove_writer(self.sock.fileno())

    def detach(self) -> None:
        """Stop watching and close the socket: the worker reads end of file and exits."""
        if self.attached:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self.sock.fileno())
            loop.remove_writer(self.sock.fileno())
            self.sock.close()
        self.outgoing.clear()

    def kill(self) -> None:
        """SIGKILL: it cannot be trusted to finish (stuck, or not serving our model)."""
        self.process.kill()  # a no-op for a process already reaped or gone


async def reap(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait for a worker to exit without blocking the loop; kill it after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if process.poll() is None:
        process.kill()
        return await asyncio.to_thread(process.wait)
    return process.returncode
