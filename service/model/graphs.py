"""Which of an artifact's int8 graphs this process serves: the one its CPU runs fastest, timed here.

The fastest graph differs between CPU kinds (docs/model.md: the unfused MatMul-only graph beats the
fused one by 4-13% on the AVX-512 VNNI kinds), and flags alone do not say which, so the model
worker that chooses (a front's first, or a colocated process) times the graphs at start-up, for
a bounded time, and keeps one session: the others are dropped before it serves, so a worker
holds one graph's memory.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from service.artifact import AUTO_GRAPH, PRIMARY_GRAPH, Artifact
from service.heap import release_free_memory
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer

# Tweets are ~16-50 tokens and 128 is the long tail; a graph's lead differs by length (equal at 16
# on one CPU kind, 11-13% at 64): the geometric mean weighs each length alike.
TRIAL_TOKENS = (16, 64, 128)
BLOCK = 4  # runs of one graph at one length in a row, the first untimed
MIN_ROUNDS = 3  # however long a round takes (a 6-layer model at 128 tokens: ~40 ms a graph)

Rule = Literal["timed", "pinned", "only one", "not timed"]


@dataclass(frozen=True)
class GraphChoice:
    """The graph served, why, and what the trial measured (median CPU ms by graph and length)."""

    served: str
    rule: Rule
    p50_ms: dict[str, dict[int, float]] = field(default_factory=dict)
    rounds: int = 0

    def __str__(self) -> str:
        # A worker's start-up log line; the timings are in its hello and /v1/model.
        return f"{self.served} ({self.rule})"

    def report(self) -> dict[str, Any]:
        """As a model worker tells its front, and /v1/model shows."""
        p50_ms = {name: {str(n): ms for n, ms in by_n.items()} for name, by_n in self.p50_ms.items()}
        return {"served": self.served, "rule": self.rule, "p50_ms": p50_ms, "rounds": self.rounds}


def trial_inputs(tokenizer: TextTokenizer) -> list[npt.NDArray[np.int64]]:
    """Token ids of each trial length the model takes (its limit in place of longer ones)."""
    ids = tokenizer.encode(" ".join(["warm"] * tokenizer.max_length)).input_ids
    lengths = sorted({min(n, ids.shape[1]) for n in TRIAL_TOKENS})
    return [np.ascontiguousarray(ids[:, :n]) for n in lengths]


def time_graphs(
    sessions: Mapping[str, OnnxClassifierSession], inputs: list[npt.NDArray[np.int64]], seconds: float
) -> tuple[dict[str, dict[int, float]], int]:
    """Median thread CPU ms of each graph at each input length, and the rounds timed: a round runs
    each graph (in turned order each round) at each length BLOCK times, until `seconds` have passed.

    In blocks, the first run untimed: a worker serves one graph, whose weights and buffers stay in
    the CPU's caches, while a run right after another graph's finds them cold (measured: +50% at 16
    tokens, which turned the choice there). CPU time rather than wall time: a worker starting beside
    others is preempted at random, and the graph preempted more is not the slower one.
    """
    samples: dict[str, dict[int, list[float]]] = {g: {ids.shape[1]: [] for ids in inputs} for g in sessions}
    order = list(sessions)
    deadline = time.monotonic() + seconds
    rounds = 0
    while rounds < MIN_ROUNDS or time.monotonic() < deadline:
        for name in reversed(order) if rounds % 2 else order:
            session = sessions[name]
            for ids in inputs:
                session.logits(ids)
                times = samples[name][ids.shape[1]]
                for _ in range(BLOCK - 1):
                    started = time.thread_time()
                    session.logits(ids)
                    times.append(time.thread_time() - started)
        rounds += 1
    medians = {
        name: {n: round(statistics.median(times) * 1000, 4) for n, times in by_length.items()}
        for name, by_length in samples.items()
    }
    return medians, rounds


def geometric_mean(values: list[float]) -> float:
    """Their geometric mean (each length weighs alike, however long it runs)."""
    return math.exp(sum(math.log(max(v, 1e-9)) for v in values) / len(values))


def choose(
    artifact: Artifact,
    tokenizer: TextTokenizer,
    graph: str = AUTO_GRAPH,
    trial_seconds: float = 1.0,
    threads: int = 1,
    spinning: bool = False,
) -> tuple[OnnxClassifierSession, GraphChoice]:
    """The session of the graph to serve and why: `graph` when pinned, else the lowest geometric
    mean over the trial lengths (the primary graph on a tie); ValueError for a graph it lacks."""
    paths = artifact.graphs
    if not artifact.has_graph(graph):
        raise ValueError(f"the model has no graph {graph!r} (it has {', '.join(paths)})")

    def load(name: str) -> OnnxClassifierSession:
        return OnnxClassifierSession(paths[name], threads=threads, spinning=spinning)

    if graph != AUTO_GRAPH:
        return load(graph), GraphChoice(graph, "pinned")
    if not artifact.times_graphs(graph, trial_seconds):
        return load(PRIMARY_GRAPH), GraphChoice(PRIMARY_GRAPH, "only one" if len(paths) == 1 else "not timed")
    sessions = {name: load(name) for name in paths}
    p50_ms, rounds = time_graphs(sessions, trial_inputs(tokenizer), trial_seconds)
    served = min(sessions, key=lambda name: geometric_mean(list(p50_ms[name].values())))
    kept = sessions.pop(served)
    sessions.clear()  # the other graphs' sessions and their pre-packed weights
    release_free_memory()
    return kept, GraphChoice(served, "timed", p50_ms, rounds)
