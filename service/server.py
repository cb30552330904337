"""`python -m service`: validate settings and the artifact, then start N uvicorn worker processes."""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from service.artifact import ArtifactError, load_artifact
from service.config import describe, load_settings
from service.cpus import available_cpus


def log_config(level: str) -> dict[str, object]:
    """uvicorn's logging config, with the service's own loggers on the same handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["service"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def prepare_metrics_dir(configured: Path | None) -> tuple[Path, bool]:
    """An empty multiprocess metrics folder, and whether it is a temporary one to remove at exit.

    Left-over files from an earlier run would be summed into this run's counters.
    """
    if configured is None:
        return Path(tempfile.mkdtemp(prefix="textclf-metrics-")), True
    configured.mkdir(parents=True, exist_ok=True)
    for stale in configured.glob("*.db"):
        stale.unlink()
    return configured, False


def main(argv: Sequence[str] | None = None) -> int:
    """Start the service with one single-threaded worker process per available CPU."""
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=main.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="configuration, from environment variables:\n" + describe(),
    )
    parser.parse_args(argv)
    settings = load_settings()
    try:
        # Fail here, once, with a clear message, instead of N workers crash-looping on it.
        artifact = load_artifact(settings.model_dir)
    except ArtifactError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    workers = settings.workers or available_cpus()
    metrics_dir, temporary = prepare_metrics_dir(settings.metrics_dir)
    # Inherited by the worker processes, and set before any of them imports prometheus_client
    # (which picks multiprocess mode at import). Each worker runs one inference thread, so no
    # library may start its own pool (ORT is set to 1 thread in service.session).
    os.environ.update(
        {
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "TEXTCLF_METRICS_DIR": str(metrics_dir),
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    print(
        f"serving {artifact.name} {artifact.version} on http://{settings.host}:{settings.port} "
        f"with {workers} worker(s)",
        file=sys.stderr,
        flush=True,
    )
    # With one worker uvicorn serves in this process and, after draining, re-raises the SIGTERM it
    # caught to whatever handler was there before: the default one would kill us (status 143)
    # before the cleanup below. This one lets main() return 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
        loop="uvloop",
        http="httptools",
    )
    if temporary:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
