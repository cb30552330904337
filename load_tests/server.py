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

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the launcher)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        # Skip multiprocessing's resource tracker, the launcher's other child.
        return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@contextmanager
def running_service(
    artifact: Path, log: Path, workers: int = 2, env: dict[str, str] | None = None, timeout: float = 120
) -> Iterator[RunningService]:
    """Start the service, wait until /health/ready answers 200, stop it (SIGTERM) afterwards."""
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
        ready = 0
        while ready < workers:  # each worker answers ready only after its own warm-up
            if process.poll() is not None:
                raise RuntimeError(f"service exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"service not ready after {timeout} s:\n{log.read_text()[-3000:]}")
            ready = log.read_text().count("Application startup complete")
            time.sleep(0.1)
        assert httpx.get(service.url + "/health/ready", timeout=10).status_code == 200
        yield service
    finally:
        service.stop()
