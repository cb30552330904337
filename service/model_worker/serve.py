"""A model worker process: receive a job, classify it, send the reply; nothing else.

Started by its front (service.front.core.model_pool) as `python -m service.model_worker --settings
JSON --fd N` with one end of a Unix socket pair. It loads and warms the model, says READY, then
serves jobs one at a time on one thread, until the front closes the socket. It never touches HTTP
or metrics: the front records everything from the replies, so a worker killed at any moment leaves
no state behind.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import signal
import socket
import time
from collections.abc import Sequence

from service.artifact import read_artifact
from service.heap import freeze_start_up_heap
from service.logs import log_config
from service.model.classifier import Classifier
from service.protocol import Codec, JobReader, pack_hello
from service.worker_settings import OPTION, WorkerSettings

log = logging.getLogger("service.model_worker")


def serve(sock: socket.socket, classifier: Classifier, codec: Codec, version: str) -> None:
    """Say which model and graph are loaded, then answer jobs until the front closes the socket."""
    assert classifier.graph is not None, "built from an artifact"
    sock.sendall(pack_hello(version, classifier.graph.report()))
    jobs = JobReader(sock)
    while (job := jobs.next()) is not None:
        received = time.perf_counter()
        job_id, text = job
        try:
            prediction, timing = classifier.predict(text)
        except Exception:
            # A bug or a model fault on this text: the front answers 500; the worker stays up.
            log.exception("job %d failed", job_id)
            sock.sendall(codec.failed(job_id))
            continue
        busy = time.perf_counter() - received
        sock.sendall(codec.pack_reply(job_id, prediction, timing, busy))


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model named by the settings and serve the front on the inherited socket."""
    parser = argparse.ArgumentParser(prog="python -m service.model_worker", description=main.__doc__)
    parser.add_argument(OPTION, dest="settings", required=True, help="the front's WorkerSettings, as JSON")
    parser.add_argument("--fd", type=int, required=True, help="inherited Unix socket to the front")
    parser.add_argument("--graph", help="the model graph to serve, as its front says (else the settings')")
    args = parser.parse_args(argv)
    # The front decides when this process ends (it closes the socket). A Ctrl-C or a SIGTERM sent
    # to the whole process group must not kill a worker while its front is still draining.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    settings = WorkerSettings.from_json(args.settings)
    # Workers and their front share the cores. A front that waits for a time slice delays every
    # request, queued or not, while a worker's job is long and a slice less hardly shows: let the
    # scheduler favour the front (measured in BENCHMARKS.md: p99 and throughput both gain).
    os.nice(settings.model_worker_nice)
    logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
    sock = socket.socket(fileno=args.fd)
    # Hashes checked again: a replacement started after the folder was rebuilt in place must load
    # a whole artifact, and its hello names that artifact's version for the front to check. The
    # manifest's schema is the front's to check (service.manifest): a worker holds no pydantic.
    artifact = read_artifact(settings.model_dir)
    graph = args.graph or settings.model_graph
    if not artifact.has_graph(graph):
        # Its front chose a graph of the model it started with; this folder was rebuilt since.
        log.error("model %s has no %s graph (rebuilt in place?): not serving", artifact.version, graph)
        return 1
    classifier = Classifier.from_artifact(
        artifact,
        threads=1,
        spinning=settings.intra_op_spinning,
        graph=graph,
        trial_seconds=settings.graph_trial_seconds,
    )
    classifier.warm_up(settings.warmup_runs)
    log.info(
        "model %s loaded, serving its graph %s; %d start-up objects frozen",
        artifact.version,
        classifier.graph,
        freeze_start_up_heap(),
    )
    try:
        serve(sock, classifier, Codec(artifact.labels), artifact.version)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the front went away mid-reply: nobody is left to answer
    return 0
