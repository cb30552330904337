"""`python -m service`: validate settings and the artifact, then start N uvicorn worker processes."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Sequence

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
    # Inherited by the worker processes: each runs one inference thread, so no library may
    # start its own pool (ORT is set to 1 thread in service.session).
    os.environ.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    print(
        f"serving {artifact.name} {artifact.version} on http://{settings.host}:{settings.port} "
        f"with {workers} worker(s)",
        file=sys.stderr,
        flush=True,
    )
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
    return 0
