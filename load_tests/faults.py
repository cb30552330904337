"""Faults an operator meets, measured from the client's side on the real service:

    python -m load_tests.faults

Starts the service on loopback (cache off, so every request needs a model worker) and, for each
fault, runs a steady closed-loop load of 4 keep-alive clients while readiness is polled every
50 ms: a hung model worker (SIGSTOP) of 2, the only worker hung (TEXTCLF_WORKERS=1), and the
model folder rebuilt in place under a 1-worker service (its worker killed so that a replacement
loads the folder). Then auth with a tokens file that is empty at start and filled later. Reports,
per fault, what clients got and how long each state lasted. Bounded: each phase ends on its own
deadline; loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from load_tests.server import RunningService, running_service
from service.artifact import DEFAULT_MODEL_DIR, artifact_version


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 60) -> float:
    """Poll `condition` every 50 ms; the seconds it took. AssertionError past `seconds`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


@dataclass(frozen=True)
class Answer:
    """One request as its client saw it."""

    sent: float  # monotonic
    took: float  # seconds
    status: int | None  # None: no answer (a timeout or a broken connection)
    retry_after: str | None


@dataclass
class Observed:
    """Everything a steady load and a readiness poller saw, appended from their threads."""

    answers: list[Answer]
    readiness: list[tuple[float, int]]  # (monotonic, status)


@contextmanager
def steady_load(url: str, users: int = 4, client_timeout: float = 60) -> Iterator[Observed]:
    """`users` keep-alive clients, each sending a new text as soon as the last was answered, and a
    readiness poll every 50 ms, until the block ends."""
    stop = threading.Event()
    seen = Observed([], [])

    def user() -> None:
        with httpx.Client(timeout=client_timeout) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    r = client.post(url + "/v1/classify", json={"text": f"steady {uuid.uuid4()}"})
                    status, retry = r.status_code, r.headers.get("retry-after")
                except httpx.TransportError:
                    status, retry = None, None
                seen.answers.append(Answer(sent, time.monotonic() - sent, status, retry))

    def poll() -> None:
        while not stop.is_set():
            status = httpx.get(url + "/health/ready", timeout=10).status_code
            seen.readiness.append((time.monotonic(), status))
            time.sleep(0.05)

    threads = [threading.Thread(target=user) for _ in range(users)] + [threading.Thread(target=poll)]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def unready_spells(readiness: Sequence[tuple[float, int]]) -> list[float]:
    """How long each run of non-200 readiness answers lasted, in seconds."""
    spells, began = [], None
    for at, status in readiness:
        if status != 200 and began is None:
            began = at
        elif status == 200 and began is not None:
            spells.append(at - began)
            began = None
    return spells


def summary(seen: Observed, since: float) -> dict[str, Any]:
    """What the clients got for requests answered from `since` on, and the unready spells."""
    after = [a for a in seen.answers if a.sent + a.took >= since]
    return {
        "statuses": dict(Counter(str(a.status) for a in after)),
        "503_without_retry_after": sum(1 for a in after if a.status == 503 and not a.retry_after),
        "slowest_s": round(max(a.took for a in after), 2),
        "unready_s": [round(s, 2) for s in unready_spells([r for r in seen.readiness if r[0] >= since])],
    }


def hung_worker(model: Path, tmp: Path, workers: int) -> dict[str, Any]:
    """SIGSTOP one model worker under load; measure until it is replaced and ready again."""
    env = {"TEXTCLF_CACHE_ENTRIES": "0"}
    with running_service(model, tmp / f"hung-{workers}.log", workers=workers, env=env) as svc:
        with steady_load(svc.url) as seen:
            time.sleep(2)
            victim = svc.model_worker_pids()[0]
            stopped = time.monotonic()
            os.kill(victim, signal.SIGSTOP)
            recovered = wait_until(replaced(svc, victim, workers), "the hung worker replaced", 120)
            time.sleep(2)
    return summary(seen, stopped) | {"replaced_and_ready_after_s": round(recovered, 2)}


def replaced(svc: RunningService, victim: int, workers: int) -> Callable[[], bool]:
    def check() -> bool:
        pids = svc.model_worker_pids()
        return victim not in pids and len(pids) == workers and ready(svc)

    return check


def ready(svc: RunningService) -> bool:
    return httpx.get(svc.url + "/health/ready", timeout=10).status_code == 200


def rebuild_in_place(manifest: Path) -> tuple[str, str]:
    """Write another valid model's manifest over `manifest` (half its sequence limit, so another
    version), as a build into a mounted folder would; the original text and the new version."""
    original = manifest.read_text()
    rebuilt = json.loads(original)
    rebuilt["max_sequence_length"] //= 2
    rebuilt["version"] = artifact_version(
        rebuilt["files"], rebuilt["labels"], rebuilt["max_sequence_length"], rebuilt.get("thresholds")
    )
    manifest.write_text(json.dumps(rebuilt))
    return original, rebuilt["version"]


def rebuilt_folder(model: Path, tmp: Path, liveness: float) -> dict[str, Any]:
    """The model folder gets another valid model in place, then its worker dies: a replacement
    loads the new one and is refused. Measured until liveness fails, then rolled back."""
    folder = tmp / "model"
    shutil.copytree(model, folder)
    manifest = folder / "manifest.json"
    env = {"TEXTCLF_CACHE_ENTRIES": "0", "TEXTCLF_UNREADY_LIVENESS_SECONDS": str(liveness)}
    with running_service(folder, tmp / "rebuilt.log", workers=1, env=env) as svc:
        with steady_load(svc.url) as seen:
            time.sleep(2)
            original, refused = rebuild_in_place(manifest)
            killed = time.monotonic()
            os.kill(svc.model_worker_pids()[0], signal.SIGKILL)
            not_live = wait_until(lambda: not live(svc), "liveness to fail", liveness + 60)
            manifest.write_text(original)
            back = wait_until(lambda: ready(svc) and live(svc), "recovery after the rollback", 120)
            answer = httpx.post(svc.url + "/v1/classify", json={"text": "which model?"}, timeout=30)
            time.sleep(1)
    return summary(seen, killed) | {
        "not_live_after_s": round(not_live, 2),
        "ready_after_rollback_s": round(back, 2),
        "version_after_rollback": answer.json()["model"]["version"],
        "refused_version": refused,
    }


def live(svc: RunningService) -> bool:
    return httpx.get(svc.url + "/health/live", timeout=10).status_code == 200


def empty_tokens_file(model: Path, tmp: Path) -> dict[str, Any]:
    """Auth with a tokens file empty at start: what a request without a token and one with the
    later token get, and how soon that token works after it is written."""
    tokens = tmp / "tokens"
    tokens.write_text("")
    env = {"TEXTCLF_API_TOKENS_FILE": str(tokens)}
    with running_service(model, tmp / "tokens.log", workers=1, env=env) as svc:

        def ask(token: str | None) -> int:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            url = svc.url + "/v1/classify"
            return httpx.post(url, json={"text": "let me in"}, headers=headers, timeout=30).status_code

        before = {"no token": ask(None), "a guessed token": ask("guess")}
        tokens.write_text("late-token-0123456789\n")
        works = wait_until(lambda: ask("late-token-0123456789") == 200, "the late token accepted", 30)
        after = {"no token": ask(None), "the late token": ask("late-token-0123456789")}
    return {"while_empty": before, "token_works_after_s": round(works, 2), "after": after}


def main(argv: Sequence[str] | None = None) -> int:
    """Run each fault against the real service and print what clients saw, as JSON."""
    parser = argparse.ArgumentParser(prog="python -m load_tests.faults", description=main.__doc__)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument(
        "--unready-liveness", type=float, default=10, help="TEXTCLF_UNREADY_LIVENESS_SECONDS for the rebuild"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "hung worker, 2 workers": hung_worker(args.model_dir, Path(tmp), 2),
            "hung worker, the only one": hung_worker(args.model_dir, Path(tmp), 1),
            "model folder rebuilt in place": rebuilt_folder(args.model_dir, Path(tmp), args.unready_liveness),
            "tokens file empty at start": empty_tokens_file(args.model_dir, Path(tmp)),
        }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
