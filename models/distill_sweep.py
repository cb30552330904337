"""Choose distillation's temperature and soft-label weight by measurement on the validation split.

    python -m models.distill_sweep --work artifacts/sentiment.work --student-layers 2 \\
        --temperatures 1 2 4 --soft-weights 0.5 0.9

The teacher is the fine-tuned checkpoint in the work folder; its logits, by its int8 graph there as
in the build, are computed once for every row. Each combination trains one student (PyTorch, the
build's loop) and is judged on the validation split, never the test split, so the test split stays
an unbiased check of the choice.
`--labelled-share S` asks whether unlabelled texts help: each combination is trained on the first
S of the training split alone, then on that share plus the rest with its labels hidden.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import torch
from transformers import AutoTokenizer

from models import data
from models.distill import NO_LABEL, DistillOptions, share_equal, teacher_logits, train_student
from models.quantize import INT8_GRAPHS
from models.train import TrainOptions, load_classifier, predict_ids
from service.artifact import PRIMARY_GRAPH


def variants(labels: Sequence[int], share: float | None) -> Iterator[tuple[str, int, list[int]]]:
    """(name, rows used, their labels): the whole split, or a labelled share without and with the rest."""
    if share is None:
        yield "all labelled", len(labels), list(labels)
        return
    n = int(len(labels) * share)
    yield f"first {share:.0%} labelled", n, list(labels[:n])
    yield (
        f"first {share:.0%} labelled + rest unlabelled",
        len(labels),
        [*labels[:n]] + [NO_LABEL] * (len(labels) - n),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Train one student per combination; print a JSON row each and a Markdown table."""
    p = argparse.ArgumentParser(prog="python -m models.distill_sweep", description=main.__doc__)
    p.add_argument("--work", type=Path, required=True, help="a build's work folder (checkpoint/, data/)")
    p.add_argument("--student-layers", type=int, default=2)
    p.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    p.add_argument("--soft-weights", type=float, nargs="+", default=[0.5, 0.9])
    p.add_argument("--learning-rates", type=float, nargs="+", default=[1e-4])
    p.add_argument("--distill-epochs", type=int, default=1)
    p.add_argument("--labelled-share", type=float, default=None, help="measure unlabelled texts' help")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--train-max-length", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128, help="length the students are judged at")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--train-word-embeddings", action="store_true", help="as models.build's flag")
    p.add_argument("--seed", type=int, default=13)
    args = p.parse_args(argv)
    checkpoint = args.work / "checkpoint"
    # The student's training loop reads batch size, length cap, threads and seed from these; the
    # fine-tuning's own epochs and rate do not apply (each combination gives its own).
    training = TrainOptions(
        source=str(checkpoint),
        epochs=0,
        batch_size=args.batch_size,
        learning_rate=0.0,
        train_max_length=args.train_max_length,
        threads=args.threads,
        quiet=True,
        seed=args.seed,
        train_word_embeddings=args.train_word_embeddings,
    )
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    teacher = load_classifier(str(checkpoint))
    label2id = cast(dict[str, int], teacher.config.label2id)
    train_rows = data.read_split(args.work / "data", "train")
    validation = data.read_split(args.work / "data", "validation")
    ids = tokenizer([e.text for e in train_rows], truncation=True, max_length=args.train_max_length)[
        "input_ids"
    ]
    pad = cast(int, tokenizer.pad_token_id)
    soft_targets = teacher_logits(args.work / INT8_GRAPHS[PRIMARY_GRAPH], ids, args.threads)
    gold = [label2id[e.label] for e in validation]
    val_texts = [e.text for e in validation]
    by_teacher = predict_ids(teacher, tokenizer, val_texts, args.max_length)
    print(f"teacher validation accuracy {share_equal(by_teacher, gold):.4f}", file=sys.stderr)
    labels = [label2id[e.label] for e in train_rows]
    rows = []
    for temperature, soft_weight, rate in itertools.product(
        args.temperatures, args.soft_weights, args.learning_rates
    ):
        for name, used, row_labels in variants(labels, args.labelled_share):
            options = DistillOptions(
                args.student_layers, temperature, soft_weight, args.distill_epochs, rate, None
            )
            started = time.monotonic()
            student, _ = train_student(
                teacher, ids[:used], pad, soft_targets[:used], torch.tensor(row_labels), options, training
            )
            by_student = predict_ids(student, tokenizer, val_texts, args.max_length)
            row = {
                "layers": args.student_layers,
                "temperature": temperature,
                "soft_weight": soft_weight,
                "learning_rate": rate,
                "epochs": args.distill_epochs,
                "texts": name,
                "validation_accuracy": round(share_equal(by_student, gold), 4),
                "teacher_validation_accuracy": round(share_equal(by_teacher, gold), 4),
                "agreement_with_teacher": round(share_equal(by_student, by_teacher), 4),
                "seconds": round(time.monotonic() - started, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("| T | soft weight | lr | texts | validation acc. | teacher | agreement |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['temperature']:g} | {r['soft_weight']:g} | {r['learning_rate']:g} | {r['texts']} | "
            f"{r['validation_accuracy']:.4f} | {r['teacher_validation_accuracy']:.4f} | "
            f"{r['agreement_with_teacher']:.4f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
