"""Start the real service (`python -m service`) on a free loopback port, for load and integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningService:
    url: str
    process: subprocess.Popen[str]
    log: Path

    @property
    def port(self) -> int:
        """The loopback port it listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def http_pids(self) -> list[int]:
        """The HTTP processes: uvicorn's worker processes, or the launcher itself when it serves alone."""
        spawned = [c for c in _children(self.process.pid) if b"spawn_main" in _cmdline(c)]
        return spawned or [self.process.pid]

    def model_worker_pids(self) -> list[int]:
        """The model worker processes of every HTTP process (pool mode)."""
        return [c for h in self.http_pids() for c in _children(h) if b"service.model_worker" in _cmdline(c)]

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def peer_processes(pid: int) -> dict[str, list[int]]:
    """Another server's processes by role: its multiprocessing children (mosec's Python workers)
    or `service.model_worker` children (the floor's) are its model workers; the rest (the
    launcher, mosec's Rust front) its front."""
    tree = [pid, *_descendants(pid)]
    workers = [
        p for p in tree if any(w in _cmdline(p) for w in (b"multiprocessing", b"service.model_worker"))
    ]
    return {"front": [p for p in tree if p not in workers], "model workers": workers}


def _descendants(pid: int) -> list[int]:
    return [d for c in _children(pid) for d in (c, *_descendants(c))]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@contextmanager
def running_service(
    artifact: Path,
    log: Path,
    workers: int = 2,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    token: str | None = None,
) -> Iterator[RunningService]:
    """Start the service, wait until every HTTP process is ready, stop it (SIGTERM) afterwards.

    `workers` is the model worker count; the HTTP processes are the fronts (pool mode, the
    default) or one per worker (TEXTCLF_SERVING=colocated). `token` is sent to the readiness
    route, for a service whose health routes need one.
    """
    port = free_port()
    environment = (
        dict(os.environ)
        | {
            "TEXTCLF_MODEL_DIR": str(artifact),
            "TEXTCLF_HOST": "127.0.0.1",
            "TEXTCLF_PORT": str(port),
            "TEXTCLF_WORKERS": str(workers),
        }
        | (env or {})
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    service = RunningService(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + timeout
        pool = environment.get("TEXTCLF_SERVING", "pool") == "pool"
        http = int(environment.get("TEXTCLF_FRONTS", "1")) if pool else workers
        ready = 0
        while ready < http:  # each HTTP process answers ready only after its models are warm
            if process.poll() is not None:
                raise RuntimeError(f"service exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"service not ready after {timeout} s:\n{log.read_text()[-3000:]}")
            ready = log.read_text().count("Application startup complete")
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert httpx.get(service.url + "/health/ready", headers=headers, timeout=10).status_code == 200
        yield service
    finally:
        service.stop()
