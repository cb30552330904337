"""Measure structured pruning over a grid: heads and feed-forward width kept against speed and accuracy.

    python -m models.prune_sweep --work artifacts/sentiment.work --heads 0.5 0.25 --ffn 0.5 0.25

Each point prunes the build's K-layer student (its checkpoint and the lesson beside it, in
student-K/), lets it recover as the build does, exports, fuses and quantizes it, and scores the
int8 graph on the validation split (what the defaults are chosen on) and on the test split (the
table). Then every point and the unpruned student are timed side by side: int8, one thread,
alternating run by run, at 16, 64 and 128 tokens. Points are written under work/prune-sweep/.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models import data, distill, export, latency, optimize, quantize, train
from models.evaluate import predict, scores
from models.layout import student_folder
from models.options import from_args
from models.prune import PruneOptions, prune
from service.artifact import MULTI_LABEL
from service.model.classifier import Classifier
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer

TOKENS = (16, 64, 128)


def accuracy(
    model: Path, tokenizer: TextTokenizer, labels: Sequence[str], split: Sequence[data.Example]
) -> float:
    """The int8 graph's accuracy on a split, one unpadded text at a time (the service's classifier)."""
    classifier = Classifier(tokenizer, OnnxClassifierSession(model), labels)
    gold = [labels.index(e.label) for e in split]
    return scores(gold, predict(classifier, [e.text for e in split]))["accuracy"]


def main(argv: Sequence[str] | None = None) -> int:
    """Prune the build's student at each point of the grid; print a JSON row each and a Markdown table."""
    p = argparse.ArgumentParser(prog="python -m models.prune_sweep", description=main.__doc__)
    p.add_argument("--work", type=Path, required=True, help="a build's work folder (data/, student-K/)")
    p.add_argument("--student-layers", type=int, default=2)
    p.add_argument("--heads", type=float, nargs="+", default=[0.5, 0.25], help="shares of heads kept")
    p.add_argument("--ffn", type=float, nargs="+", default=[0.5, 0.25], help="shares of FFN width kept")
    p.add_argument("--importance-texts", type=int, default=4000)
    p.add_argument("--recover-epochs", type=int, default=1)
    p.add_argument("--runs", type=int, default=300, help="timed runs per model and length")
    p.add_argument("--seed", type=int, default=13)
    for add in (train.add_arguments, distill.add_arguments, export.add_arguments, quantize.add_arguments):
        add(p)
    args = p.parse_args(argv)
    student = student_folder(args.work, args.student_layers)
    data_dir, sweep = args.work / "data", args.work / "prune-sweep"
    training = from_args(train.TrainOptions, args, quiet=True)
    distilling = from_args(distill.DistillOptions, args, student_layers=args.student_layers)
    exporting = from_args(export.ExportOptions, args)
    exported = json.loads((student / "export.json").read_text())
    if exported.get("problem_type") == MULTI_LABEL:
        raise SystemExit(
            "the sweep judges a single-label model by accuracy; prune a multi-label one with the build"
        )
    labels, longest = exported["labels"], exported["max_sequence_length"]
    tokenizer = TextTokenizer(student / "tokenizer.json", longest)
    splits = {name: data.read_split(data_dir, name) for name in ("validation", "test")}
    models: dict[str, Path] = {"unpruned": student / "model.int8.onnx"}
    rows: dict[str, dict[str, Any]] = {"unpruned": {"heads": 1.0, "ffn": 1.0}}
    for heads, ffn in itertools.product(args.heads, args.ffn):
        name, out = f"heads {heads:g}, FFN {ffn:g}", sweep / f"h{heads:g}-f{ffn:g}"
        options = PruneOptions(heads, ffn, args.importance_texts, args.recover_epochs)
        report = prune(options, distilling, training, student / "checkpoint", out / "checkpoint")
        export.run(out / "checkpoint", data_dir, out, exporting)
        optimize.run(out)
        quantize.run(out, quantize.options_from(args), unfused=False)
        models[name] = out / "model.int8.onnx"
        rows[name] = {"heads": heads, "ffn": ffn, "seconds": report["seconds"]}
        print(f"{name}: pruned and packaged", file=sys.stderr, flush=True)
    for name, model in models.items():
        rows[name] |= {s: accuracy(model, tokenizer, labels, split) for s, split in splits.items()}
    texts = [e.text for e in splits["test"][:400]]
    tokens = [n for n in TOKENS if n <= longest]
    inputs = {n: latency.inputs_of_length(tokenizer, texts, n) for n in tokens}
    table = latency.measure({k: OnnxClassifierSession(m) for k, m in models.items()}, inputs, args.runs)
    for name, row in rows.items():
        row["p50_ms"] = {n: table[name][str(n)]["p50_ms"] for n in tokens}
        row["speedup"] = {n: round(table["unpruned"][str(n)]["p50_ms"] / row["p50_ms"][n], 2) for n in tokens}
        print(json.dumps({"point": name, **row}), flush=True)
    machine = latency.cpu()
    print(f"Measured on {machine['cpu']} ({', '.join(machine['int8_flags'])}), {args.runs} runs a length.")
    times = " | ".join(f"p50 ms @{n}" for n in tokens)
    print(f"| heads kept | FFN width kept | validation acc. | test acc. | {times} | speed-up |")
    print("|---" * (5 + len(tokens)) + "|")
    for row in rows.values():
        ms = " | ".join(f"{row['p50_ms'][n]:.3f}" for n in tokens)
        up = " / ".join(f"{row['speedup'][n]:.2f}x" for n in tokens)
        kept = f"| {row['heads']:.0%} | {row['ffn']:.0%} |"
        print(f"{kept} {row['validation']:.4f} | {row['test']:.4f} | {ms} | {up} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
