"""`make bench`'s graph section: the artifact's int8 graphs timed in process on this CPU, beside
the graph the service chose when it started here (its first model worker's trial).

The in-process timing is the service's own trial (service.model.graphs.time_graphs: thread CPU, in
blocks of one graph), ten times as long and on real texts, so the two can be compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from load_tests.server import running_service
from models import latency
from service.manifest import load_artifact
from service.model.graphs import TRIAL_TOKENS, time_graphs
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer

REFERENCE_SECONDS = 10.0  # the service's trial takes 1 s
TARGET_TOKENS = 64  # issue 33: the graph served is the faster at 64 tokens


def run_graphs(
    model_dir: Path, texts: list[str], log: Path, seconds: float = REFERENCE_SECONDS
) -> dict[str, Any]:
    """Each graph's median CPU ms at each length, in process, and the graph the service chose."""
    artifact = load_artifact(model_dir)
    tokenizer = TextTokenizer(artifact.tokenizer_path, artifact.max_sequence_length)
    lengths = sorted({min(n, artifact.max_sequence_length) for n in TRIAL_TOKENS})  # as the trial's
    inputs = [latency.inputs_of_length(tokenizer, texts, n) for n in lengths]
    sessions = {name: OnnxClassifierSession(path) for name, path in artifact.graphs.items()}
    p50_ms, rounds = time_graphs(sessions, inputs, seconds)
    del sessions
    with running_service(model_dir, log, workers=2) as service:
        graph = httpx.get(service.url + "/v1/model", timeout=10).json()["graph"]
    return {"in_process_p50_ms": p50_ms, "rounds": rounds, "seconds": seconds, "service": graph}


def graphs_table(result: dict[str, Any]) -> str:
    """The graphs side by side, in process, and which one the service serves, as Markdown."""
    timed = result["in_process_p50_ms"]
    lengths = list(next(iter(timed.values())))
    served = result["service"]["serving"]
    trial = result["service"]["choice"]
    lines = [
        "| int8 graph | " + " | ".join(f"p50 CPU ms @{n}" for n in lengths) + " | served by the service |",
        "|---" * (2 + len(lengths)) + "|",
    ]
    for name, by_length in timed.items():
        ms = " | ".join(f"{by_length[n]:.3f}" for n in lengths)
        workers = served.get(name, 0)
        lines.append(f"| {name} | {ms} | {f'yes ({workers} workers)' if workers else 'no'} |")
    lines += [
        "",
        f"In process: {result['rounds']} rounds of blocks over {result['seconds']:.0f} s (the service's "
        f"own trial, run longer). The service's first worker: {trial['rule']}, "
        + "; ".join(
            f"{name} {', '.join(f'{ms:.3f}' for ms in by_length.values())} ms"
            for name, by_length in (trial.get("p50_ms") or {}).items()
        )
        + f" ({trial['rounds']} rounds).",
    ]
    return "\n".join(lines)


def graph_targets(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Issue 33's target: the graph the service serves is the faster at 64 tokens here."""
    timed = result["in_process_p50_ms"]
    if len(timed) < 2 or not all(TARGET_TOKENS in by_length for by_length in timed.values()):
        return []
    at = {name: by_length[TARGET_TOKENS] for name, by_length in timed.items()}
    fastest = min(at, key=at.__getitem__)
    served = list(result["service"]["serving"])
    return [
        (
            f"the graph the service serves is the faster of the artifact's at {TARGET_TOKENS} tokens "
            "(in process, same run)",
            f"serves {', '.join(served)}; " + ", ".join(f"{name} {ms:.3f} ms" for name, ms in at.items()),
            served == [fastest],
        )
    ]
