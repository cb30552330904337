"""Judge fp32 and int8 ONNX models on the held-out test split; fail the build on an accuracy drop."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from models import baseline, data, latency, multi_label
from models.options import from_args
from models.quantize import INT8_GRAPHS
from service.artifact import MULTI_LABEL, PRIMARY_GRAPH, SINGLE_LABEL, UNFUSED_GRAPH
from service.model.classifier import Classifier
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer
from service.scores import sigmoid

LATENCY_TOKENS = (16, 128)
UNFUSED_ROW = f"int8_{UNFUSED_GRAPH}"  # the accuracy and latency tables' row for the unfused int8 graph
# What the gates compare: a single-label model's accuracy, a multi-label model's macro-F1 (each
# label counts the same, however rare).
GATE_METRIC: dict[str, str] = {SINGLE_LABEL: "accuracy", MULTI_LABEL: "macro_f1"}


class GateError(SystemExit):
    """The artifact is not good enough to ship; the message names the flag that relaxes the gate."""


def predict(classifier: Classifier, texts: Sequence[str]) -> list[int]:
    """Label ids, one unpadded text at a time, by the service's own Classifier."""
    return [classifier.labels.index(classifier.predict(t)[0].label) for t in texts]


def scores(gold: Sequence[int], pred: Sequence[int]) -> dict[str, float]:
    """Accuracy and macro-F1, rounded for the manifest."""
    return {
        "accuracy": round(float(accuracy_score(gold, pred)), 4),
        "macro_f1": round(float(f1_score(gold, pred, average="macro")), 4),
    }


def check_gates(
    table: dict[str, dict[str, float]],
    tolerance_points: float,
    require_baseline: bool,
    teacher_tolerance_points: float | None = None,
    metric: str = "accuracy",
) -> None:
    """Raise GateError when int8 loses more than `tolerance_points` of `metric` to fp32, loses to
    TF-IDF, or (a distilled student, with a "teacher" row) loses more than `teacher_tolerance_points`
    to its teacher."""
    int8, fp32 = table["int8"][metric], table["fp32"][metric]
    drop = (fp32 - int8) * 100
    if drop > tolerance_points:
        raise GateError(
            f"int8 {metric} {int8:.4f} is {drop:.2f} points below fp32 {fp32:.4f}; the limit is "
            f"{tolerance_points} (change it with --int8-tolerance)"
        )
    if require_baseline and int8 <= table["baseline"][metric]:
        raise GateError(
            f"int8 {metric} {int8:.4f} does not beat the TF-IDF baseline "
            f"{table['baseline'][metric]:.4f} (allow it with --no-require-beat-baseline)"
        )
    if teacher_tolerance_points is not None and "teacher" in table:
        behind = (table["teacher"][metric] - int8) * 100
        if behind > teacher_tolerance_points:
            raise GateError(
                f"the student's int8 {metric} {int8:.4f} is {behind:.2f} points below its teacher's "
                f"{table['teacher'][metric]:.4f}; the limit is {teacher_tolerance_points} "
                "(change it with --student-tolerance)"
            )


@dataclass(frozen=True)
class EvalOptions:
    """The gates and how much to measure."""

    int8_tolerance: float
    require_beat_baseline: bool
    student_tolerance: float
    latency_runs: int
    eval_threads: int


def run(
    work: Path, data_dir: Path, args: EvalOptions, teacher_score: float | None = None
) -> dict[str, object]:
    """Accuracy table (a multi-label model: F1 with thresholds chosen on validation), agreement and
    latency table; written to work/evaluate.json.

    With `teacher_score` (the model is a distilled student: its teacher's int8 gate metric) the
    table gets a "teacher" row and the student is gated on it too.
    """
    exported = json.loads((work / "export.json").read_text())
    labels = exported["labels"]
    problem = exported.get("problem_type", SINGLE_LABEL)
    metric = GATE_METRIC[problem]
    test = data.read_split(data_dir, "test")
    unknown = set(data.labels_of(test)) - set(labels)
    if unknown:
        raise SystemExit(
            f"test labels {sorted(unknown)} are not model labels {exported['labels']}: "
            "pass --csv with data labelled like the model"
        )
    tokenizer = TextTokenizer(work / "tokenizer.json", exported["max_sequence_length"])
    texts = [e.text for e in test]
    models = {"fp32": work / "model.opt.onnx", "int8": work / INT8_GRAPHS[PRIMARY_GRAPH]}
    if (work / INT8_GRAPHS[UNFUSED_GRAPH]).is_file():
        models[UNFUSED_ROW] = work / INT8_GRAPHS[UNFUSED_GRAPH]
    classifiers = {
        name: Classifier(tokenizer, OnnxClassifierSession(path, threads=args.eval_threads), labels)
        for name, path in models.items()
    }
    thresholds: dict[str, float] | None = None
    table: dict[str, dict[str, Any]]
    if problem == MULTI_LABEL:
        table, agreement, thresholds = _judge_multi_label(classifiers, labels, data_dir, test)
    else:
        label_ids = {label: i for i, label in enumerate(labels)}
        gold = [label_ids[e.label] for e in test]
        preds = {name: predict(classifier, texts) for name, classifier in classifiers.items()}
        table = {name: scores(gold, p) for name, p in preds.items()}
        agreement = sum(a == b for a, b in zip(preds["fp32"], preds["int8"], strict=True)) / len(texts)
    table["baseline"] = baseline.measured(data_dir, problem)
    if teacher_score is not None:
        table["teacher"] = {metric: teacher_score}
    single = {name: OnnxClassifierSession(path, threads=1) for name, path in models.items()}
    inputs = {
        n: latency.inputs_of_length(tokenizer, texts[:200], n)
        for n in LATENCY_TOKENS
        if n <= exported["max_sequence_length"]
    }
    lat = latency.measure(single, inputs, runs=args.latency_runs)
    report: dict[str, object] = {
        "test_texts": len(texts),
        "problem_type": problem,
        "accuracy": table,
        "thresholds": thresholds,
        "int8_fp32_agreement": round(agreement, 4),
        "latency_single_thread": lat,
        "latency_runs": args.latency_runs,
        "int8_speedup_p50": {
            n: round(lat["fp32"][n]["p50_ms"] / lat["int8"][n]["p50_ms"], 2) for n in lat["int8"]
        },
        "gates": {
            "metric": metric,
            "int8_tolerance_points": args.int8_tolerance,
            "require_beat_baseline": args.require_beat_baseline,
            "student_tolerance_points": args.student_tolerance if teacher_score is not None else None,
        },
    }
    gates = (args.int8_tolerance, args.require_beat_baseline, args.student_tolerance, metric)
    graphs, refused = [PRIMARY_GRAPH], {}
    if UNFUSED_ROW in table:
        try:  # judged as if it were the int8 model: the same gates, or it is not shipped
            check_gates(table | {"int8": table[UNFUSED_ROW]}, *gates)
            graphs.append(UNFUSED_GRAPH)
        except GateError as gate_error:
            refused[UNFUSED_GRAPH] = str(gate_error)
    report |= {"graphs": graphs, "graphs_refused": refused}
    (work / "evaluate.json").write_text(json.dumps(report, indent=2))
    check_gates(table, *gates)
    return report


def sigmoid_scores(classifier: Classifier, texts: Sequence[str]) -> np.ndarray:
    """A multi-label model's score of every label, a row per text, one unpadded text at a time."""
    return np.array([sigmoid(classifier.predict(t)[0].logits) for t in texts])


def _judge_multi_label(
    classifiers: dict[str, Classifier], labels: Sequence[str], data_dir: Path, test: Sequence[data.Example]
) -> tuple[dict[str, dict[str, Any]], float, dict[str, float]]:
    """Each model's F1 on test, at thresholds chosen on validation (each model its own); the share of
    test texts fp32 and int8 answer with the same labels; the int8 model's thresholds (the unfused
    int8 graph is judged at them)."""
    validation = data.read_split(data_dir, "validation")
    gold_validation = multi_label.gold_matrix([e.labels for e in validation], labels)
    gold_test = multi_label.gold_matrix([e.labels for e in test], labels)
    table: dict[str, dict[str, Any]] = {}
    selected: dict[str, np.ndarray] = {}
    thresholds: dict[str, list[float]] = {}
    for name, classifier in classifiers.items():
        # Another int8 graph of the artifact is served at the artifact's (the fused graph's) thresholds.
        chosen = (
            thresholds["int8"]
            if name == UNFUSED_ROW
            else multi_label.choose_thresholds(
                sigmoid_scores(classifier, [e.text for e in validation]), gold_validation
            )
        )
        selected[name] = sigmoid_scores(classifier, [e.text for e in test]) >= np.array(chosen)
        table[name] = multi_label.f1_table(selected[name], gold_test, labels)
        thresholds[name] = chosen
    agreement = float(np.mean(np.all(selected["fp32"] == selected["int8"], axis=1)))
    return table, agreement, dict(zip(labels, thresholds["int8"], strict=True))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Evaluation options, shared with the one-command build."""
    g = parser.add_argument_group("evaluation")
    g.add_argument(
        "--int8-tolerance",
        type=float,
        default=1.0,
        help="max int8 accuracy drop below fp32, in points (default 1.0)",
    )
    g.add_argument(
        "--require-beat-baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fail unless int8 beats the TF-IDF baseline (default on)",
    )
    g.add_argument(
        "--student-tolerance",
        type=float,
        default=1.5,
        help="max accuracy of a distilled student's int8 below its teacher, in points (default 1.5)",
    )
    g.add_argument("--latency-runs", type=int, default=300, help="timed runs per model and length")
    g.add_argument(
        "--eval-threads",
        type=int,
        default=2,
        help="threads for the accuracy pass (latency is always 1 thread)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate work/model.opt.onnx (fp32) and work/model.int8.onnx on the test split."""
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=main.__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="folder written by models.data")
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.work, args.data, from_args(EvalOptions, args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
