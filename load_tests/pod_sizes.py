"""The two serving designs on a 1-core and a 2-core pod, in one run, cache off:

    python -m load_tests.pod_sizes [--json FILE]

A 1-core pod is the service pinned to CPU 0 with one model worker and the load generator on
CPU 1 (as a pod's CPU limit would leave it); the 2-core pod is the machine, shared with the
load generator, as in `make bench`. Each pod runs closed x8 on 16-token texts and on the test
mix twice per design, alternating, then both designs open at 50, 70 and 85% of the pool's best
closed-loop rate on the mix. Needs the built model (`make model`) and at least 2 CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from load_tests.bench import CACHE_OFF, Served, load, machine, ours
from load_tests.report import markdown_table
from load_tests.server import running_service
from load_tests.texts import held_out_texts
from models.layout import work_folder
from service.artifact import DEFAULT_MODEL_DIR
from service.manifest import load_artifact
from service.model.tokenizer import TextTokenizer

DESIGNS = ("pool", "colocated")
OPEN_LOADS = (0.5, 0.7, 0.85)


@contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """This process (and what it starts meanwhile) on `cpus` only."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@dataclass(frozen=True)
class Pod:
    """A pod size: its model workers, the CPUs the service gets and those the load generator gets."""

    name: str
    workers: int
    service_cpus: set[int]
    client_cpus: set[int]

    @contextmanager
    def serving(self, model_dir: Path, design: str, log: Path) -> Iterator[Served]:
        """The service in `design` on this pod's CPUs, while this process (the load) runs on the others."""
        with ExitStack() as stack:
            with pinned(self.service_cpus):  # its processes inherit the affinity
                env = CACHE_OFF | {"TEXTCLF_SERVING": design}
                started = running_service(model_dir, log, workers=self.workers, env=env)
                service = stack.enter_context(started)
            with pinned(self.client_cpus):
                yield ours(service)


def run_pods(model_dir: Path, texts: Sequence[str], tmp: Path) -> dict[str, Any]:
    """Every run of both pods, by a name that says the pod, the design and the load."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs 2 CPUs: one for the 1-core pod, one for the load generator")
    tokenizer = TextTokenizer(load_artifact(model_dir).tokenizer_path, 512)
    short = [t for t in texts if tokenizer.encode(t).n_tokens == 16] * 200
    closed = {"mode": "closed", "concurrency": 8}
    results: dict[str, Any] = {}
    pods = (Pod("1-core", 1, {cpus[0]}, {cpus[1]}), Pod("2-core", 2, set(cpus), set(cpus)))
    for pod in pods:
        best = 0.0
        for round_ in (1, 2):
            for design in DESIGNS:
                with pod.serving(model_dir, design, tmp / f"{pod.name}-{design}-{round_}.log") as served:
                    name = f"{pod.name} {design} #{round_}, 16-token texts, closed x8"
                    load(name, results, short, served, requests=6000, duration=12, **closed)
                    name = f"{pod.name} {design} #{round_}, test mix, closed x8"
                    mix = load(name, results, texts, served, requests=5000, duration=12, **closed)
                    if design == "pool":
                        best = max(best, mix["throughput_rps"])
        for design in DESIGNS:
            with pod.serving(model_dir, design, tmp / f"{pod.name}-{design}-open.log") as served:
                for fraction in OPEN_LOADS:
                    rate = round(fraction * best)
                    name = f"{pod.name} {design}, test mix, open {rate}/s ({fraction:.0%} of pool's best)"
                    load(name, results, texts, served, rate=rate, requests=rate * 15)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Measure pool and colocated serving on a 1-core and a 2-core pod; print a Markdown table."""
    parser = argparse.ArgumentParser(
        prog="python -m load_tests.pod_sizes", description=main.__doc__, epilog=__doc__.split("\n\n")[2]
    )
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--json", type=Path, help="write the machine and every run here")
    args = parser.parse_args(argv)
    texts = held_out_texts(work_folder(args.model_dir) / "data" / "test.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        results = run_pods(args.model_dir, texts, Path(tmp))
    info = machine()
    print(f"{info['cpu']}, flags {', '.join(info['int8_flags'])}")
    print(markdown_table(list(results.items())))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
