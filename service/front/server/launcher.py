"""`python -m service`: validate settings and the artifact, then start the HTTP processes (uvicorn)."""

from __future__ import annotations

import argparse
import functools
import logging
import logging.config
import os
import shutil
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from service.artifact import ArtifactError
from service.config import describe, load_settings
from service.front.server.head_limits import HeadLimits
from service.front.server.http_protocol import GuardedHttpProtocol
from service.logs import log_config
from service.manifest import load_artifact

log = logging.getLogger("service")


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
    """Start the service: one single-threaded model worker per available CPU, fed by HTTP front(s)."""
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=main.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="configuration, from environment variables:\n" + describe(),
    )
    parser.parse_args(argv)
    settings = load_settings()
    logging_config = log_config(settings.log_level, settings.log_format)
    logging.config.dictConfig(logging_config)
    if problems := settings.tokens_file_problems():
        log.error("cannot start: TEXTCLF_API_TOKENS_FILE %s", "; ".join(problems))
        return 1
    try:
        # Fail here, once, with a clear message, instead of N HTTP processes crash-looping on it.
        artifact = load_artifact(settings.model_dir)
    except ArtifactError as err:
        log.error("cannot start: %s", err)
        return 1
    if not artifact.has_graph(settings.model_graph):
        log.error(
            "cannot start: TEXTCLF_MODEL_GRAPH=%s: the model has no such graph (it has %s; or auto)",
            settings.model_graph,
            ", ".join(artifact.graphs),
        )
        return 1
    try:
        processes = settings.http_processes()
    except ValueError as err:
        log.error("cannot start: %s (set TEXTCLF_WORKERS or TEXTCLF_FRONTS)", err)
        return 1
    metrics_dir, temporary = prepare_metrics_dir(settings.metrics_dir)
    # Inherited by every process started from here, and set before any of them imports
    # prometheus_client (which picks multiprocess mode at import). Each model runs on one thread,
    # so no library may start its own pool (ORT is set to 1 thread in service.model.session).
    os.environ.update(
        {
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "TEXTCLF_METRICS_DIR": str(metrics_dir),
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    log.info(
        "serving %s %s on http://%s:%d: %s, %d model worker(s), %d HTTP process(es)",
        artifact.name,
        artifact.version,
        settings.host,
        settings.port,
        settings.serving,
        settings.model_workers(),
        processes,
    )
    # With one worker uvicorn serves in this process and, after draining, re-raises the SIGTERM it
    # caught to whatever handler was there before: the default one would kill us (status 143)
    # before the cleanup below. This one lets main() return 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    config = uvicorn.Config(
        "service.front.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=processes,
        log_level=settings.log_level,
        log_config=logging_config,
        access_log=False,  # the edge writes access lines when settings.access_log is on
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        loop="uvloop",
        # Behind a proxy nothing here reads the client address or scheme, so X-Forwarded-* are not
        # parsed on every request; and no `server` header tells strangers what runs here.
        proxy_headers=False,
        server_header=False,
        # uvicorn takes a protocol class; a partial of one (with our bounds) is built the same way.
        http=functools.partial(  # type: ignore[arg-type]
            GuardedHttpProtocol,
            header_timeout=settings.request_read_timeout_seconds,
            max_connections=settings.max_connections,
            head_limits=HeadLimits(
                request_line=settings.max_request_line_bytes,
                header_line=settings.max_header_line_bytes,
                head=settings.max_head_bytes,
            ),
        ),
    )
    try:
        status = run_http_processes(config)
    finally:
        if temporary:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return status


def run_http_processes(config: uvicorn.Config) -> int:
    """Serve until stopped: 0, or uvicorn's start-up failure status if any HTTP process failed to start.

    `uvicorn.run` exits 3 when its only process fails to start, but with several it stops the rest
    and returns as if all went well: here the supervisor's processes are asked how they ended.
    """
    server = uvicorn.Server(config)
    if config.workers == 1:
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    failed = [p.pid for p in supervisor.processes if p.exitcode == STARTUP_FAILURE]
    if failed:
        log.error("cannot start: HTTP process(es) %s failed to start", failed)
        return STARTUP_FAILURE
    return 0
