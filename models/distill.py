"""Distil a K-layer student from a fine-tuned classifier (the teacher), PyTorch at build time only.

The student starts as the teacher with only K of its layers, evenly spaced (6 -> 3 keeps 0, 2,
4): it inherits the embeddings, the kept layers and the head, so an epoch or two is enough. It learns
from the teacher's logits softened by a temperature, mixed with the true labels. The teacher's
logits are computed once, before training, not per batch, by its int8 ONNX graph.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel

from models import data, source
from models.encoder_layers import layer_stack
from models.multi_label import micro_f1
from models.train import (
    TrainOptions,
    load_classifier,
    multi_hot,
    optimise,
    predict_logits,
    problem_of,
)
from service.artifact import MULTI_LABEL
from service.cpus import available_cpus
from service.model.session import OnnxClassifierSession

NO_LABEL = -1  # an unlabelled text's label (multi-label: a row of them): only the teacher teaches it
LESSON = "lesson.pt"  # beside a student: what it learnt from, for a later step (models.prune)


def layer_count(model_dir: Path) -> int:
    """The number of transformer layers of the model saved in `model_dir`."""
    layers: int = AutoConfig.from_pretrained(str(model_dir)).num_hidden_layers
    return layers


def kept_layers(total: int, keep: int) -> list[int]:
    """Indexes of `keep` evenly spaced layers out of `total`, the first always among them."""
    if not 1 <= keep < total:
        raise SystemExit(f"--student-layers must be between 1 and {total - 1} (the teacher has {total})")
    return [i * total // keep for i in range(keep)]


def make_student(teacher: PreTrainedModel, layers: int) -> tuple[PreTrainedModel, list[int]]:
    """A copy of the teacher with only `layers` of its transformer layers."""
    student = copy.deepcopy(teacher)
    parent, attribute, stack = layer_stack(student)
    keep = kept_layers(len(stack), layers)
    setattr(parent, attribute, nn.ModuleList([stack[i] for i in keep]))
    student.config.num_hidden_layers = layers  # DistilBERT maps it to n_layers
    return student, keep


def teacher_logits(graph: Path, ids: Sequence[list[int]], threads: int) -> torch.Tensor:
    """The logits of the teacher's int8 ONNX graph for every text, in order: the answers it serves
    (one unpadded text a run), 2.4x faster than the PyTorch teacher batched by length (docs/model.md)."""

    # One session a core the process may use: each holds the teacher's int8 weights.
    sessions = max(1, min(threads, available_cpus(), len(ids)))

    def part(k: int) -> npt.NDArray[np.float32]:
        # Single-threaded sessions on threads of their own (ORT releases the GIL): a run of one
        # short text keeps one core busy, not two.
        session = OnnxClassifierSession(graph, threads=1)
        return np.concatenate([session.logits(np.array([row], dtype=np.int64)) for row in ids[k::sessions]])

    with ThreadPoolExecutor(sessions) as pool:
        parts = list(pool.map(part, range(sessions)))
    out = np.empty((len(ids), parts[0].shape[1]), dtype=np.float32)
    for k, logits in enumerate(parts):
        out[k::sessions] = logits
    return torch.from_numpy(out)


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float, soft_weight: float
) -> torch.Tensor:
    """soft_weight x T^2 x KL(teacher || student at T) + the rest x cross-entropy on the labelled rows.
    Multi-label (`labels` a 0/1 row per text): each label's sigmoid at T against the teacher's, and
    binary cross-entropy on the labelled rows.

    T^2 keeps the soft part's gradients the size of the hard part's (Hinton et al., 2015).
    """
    if labels.dim() == 2:
        soft = nn.functional.binary_cross_entropy_with_logits(
            student / temperature, torch.sigmoid(teacher / temperature)
        ) * (temperature**2)
        labelled = labels[:, 0] != NO_LABEL
        if not labelled.any():
            return soft
        hard = nn.functional.binary_cross_entropy_with_logits(student[labelled], labels[labelled])
        return soft_weight * soft + (1 - soft_weight) * hard
    soft = nn.functional.kl_div(
        nn.functional.log_softmax(student / temperature, dim=-1),
        nn.functional.log_softmax(teacher / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    ) * (temperature**2)
    labelled = labels != NO_LABEL
    if not labelled.any():
        return soft
    hard = nn.functional.cross_entropy(student[labelled], labels[labelled])
    return soft_weight * soft + (1 - soft_weight) * hard


def share_equal(a: Sequence[object], b: Sequence[object]) -> float:
    """The share of positions where two sequences of answers agree."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / max(len(a), 1)


def read_unlabelled(path: Path) -> list[str]:
    """Texts from a file: JSON lines with a "text" field, or plain lines."""
    texts = []
    with path.open(encoding="utf-8") as f:  # not splitlines(): a JSON text may hold U+2028
        lines = [line.rstrip("\n") for line in f]
    for line in lines:
        text = json.loads(line)["text"] if line.startswith("{") else line
        if text.strip():
            texts.append(text.strip())
    return texts


@dataclass(frozen=True)
class Lesson:
    """What a student learnt from: the training texts' token ids, the teacher's logits for them and
    their labels (NO_LABEL where a text has none)."""

    ids: list[list[int]]
    pad: int
    soft_targets: torch.Tensor
    labels: torch.Tensor

    def save(self, folder: Path) -> None:
        """Write it beside a student's checkpoint."""
        torch.save(
            {"ids": self.ids, "pad": self.pad, "soft_targets": self.soft_targets, "labels": self.labels},
            folder / LESSON,
        )


def load_lesson(folder: Path) -> Lesson:
    """The lesson saved beside the student in `folder`."""
    path = folder / LESSON
    if not path.is_file():
        raise SystemExit(f"{path}: no lesson beside this student; distil it with models.distill first")
    saved = torch.load(path, weights_only=True)
    return Lesson(saved["ids"], saved["pad"], saved["soft_targets"], saved["labels"])


@dataclass(frozen=True)
class DistillOptions:
    """The student's size and what it learns from."""

    student_layers: int
    temperature: float
    soft_weight: float
    distill_epochs: int
    distill_learning_rate: float
    unlabelled: Path | None


def train_student(
    teacher: PreTrainedModel,
    ids: Sequence[list[int]],
    pad: int,
    soft_targets: torch.Tensor,
    labels: torch.Tensor,
    args: DistillOptions,
    training: TrainOptions,
) -> tuple[PreTrainedModel, list[int]]:
    """A student cut from `teacher`, trained on token ids against the teacher's logits and `labels`
    (NO_LABEL where a text has none); returned with the teacher layers it kept."""
    torch.manual_seed(training.seed)
    student, keep = make_student(teacher, args.student_layers)
    optimise(
        student,
        ids,
        pad,
        lambda batch, logits: distillation_loss(
            logits, soft_targets[batch], labels[batch], args.temperature, args.soft_weight
        ),
        args.distill_epochs,
        args.distill_learning_rate,
        training,
        "distil",
    )
    return student, keep


def distil(
    args: DistillOptions,
    training: TrainOptions,
    judged_length: int,
    teacher_dir: Path,
    teacher_graph: Path,
    teacher_name: str,
    data_dir: Path,
    out: Path,
) -> dict[str, Any]:
    """Train an `args.student_layers`-layer student of the classifier in `teacher_dir`, taught by its
    int8 graph `teacher_graph`; save it to `out`.

    Batch size, length cap, threads and seed are the fine-tuning's (`training`); accuracy is
    judged on texts cut at `judged_length` tokens, the length the service feeds.
    """
    torch.set_num_threads(training.threads)
    tokenizer = AutoTokenizer.from_pretrained(str(teacher_dir))
    teacher = load_classifier(str(teacher_dir))
    label2id = cast(dict[str, int], teacher.config.label2id)
    train_rows = data.read_split(data_dir, "train")
    unknown = set(data.labels_of(train_rows)) - label2id.keys()
    if unknown:
        raise SystemExit(f"training labels {sorted(unknown)} are not the teacher's {sorted(label2id)}")
    multi_label = problem_of(teacher) == MULTI_LABEL
    texts = [e.text for e in train_rows]
    extra = read_unlabelled(args.unlabelled) if args.unlabelled else []
    texts += extra
    if multi_label:
        unlabelled = torch.full((len(extra), len(label2id)), float(NO_LABEL))
        labels = torch.cat([multi_hot(train_rows, label2id), unlabelled])
    else:
        labels = torch.tensor([label2id[e.label] for e in train_rows] + [NO_LABEL] * len(extra))
    ids: list[list[int]] = tokenizer(texts, truncation=True, max_length=training.train_max_length)[
        "input_ids"
    ]
    pad = cast(int, tokenizer.pad_token_id)

    started = time.monotonic()
    soft_targets = teacher_logits(teacher_graph, ids, training.threads)
    teacher_seconds = time.monotonic() - started
    teacher_layers = teacher.config.num_hidden_layers
    student, keep = train_student(teacher, ids, pad, soft_targets, labels, args, training)
    seconds = time.monotonic() - started
    student.save_pretrained(out)
    tokenizer.save_pretrained(out)
    Lesson(ids, pad, soft_targets, labels).save(out)

    test = data.read_split(data_dir, "test")
    # Judged at the length the service feeds, like the ONNX models: accuracy, or a multi-label
    # model's micro-F1 at 0.5 (the served thresholds are chosen later, on the ONNX model).
    metric = "micro_f1" if multi_label else "accuracy"
    test_texts = [e.text for e in test]
    by_teacher, by_student = (
        predict_logits(model, tokenizer, test_texts, judged_length) for model in (teacher, student)
    )
    if multi_label:
        gold = multi_hot(test, label2id).numpy()
        teacher_score, student_score = (micro_f1((m > 0).numpy(), gold) for m in (by_teacher, by_student))
        answers = [[tuple(row) for row in (m > 0).tolist()] for m in (by_teacher, by_student)]
    else:
        gold_ids = [label2id.get(e.label, NO_LABEL) for e in test]
        answers = [m.argmax(-1).tolist() for m in (by_teacher, by_student)]
        teacher_score, student_score = (share_equal(a, gold_ids) for a in answers)
    report: dict[str, Any] = {
        "teacher": {
            "name": teacher_name,
            "layers": teacher_layers,
            "weights_sha256": source.weights_hash(teacher_dir),
            f"test_{metric}_pytorch": round(teacher_score, 4),
        },
        "student_layers": args.student_layers,
        "kept_teacher_layers": keep,
        "temperature": args.temperature,
        "soft_weight": args.soft_weight,
        "epochs": args.distill_epochs,
        "learning_rate": args.distill_learning_rate,
        "batch_size": training.batch_size,
        "train_max_length": training.train_max_length,
        "train_word_embeddings": training.train_word_embeddings,
        "labelled_texts": len(train_rows),
        "unlabelled_texts": len(extra),
        "teacher_logits_by": "the teacher's int8 ONNX graph",
        "teacher_logits_seconds": round(teacher_seconds, 1),
        "seconds": round(seconds, 1),
        f"student_test_{metric}_pytorch": round(student_score, 4),
        "student_teacher_agreement_pytorch": round(share_equal(*answers), 4),
    }
    (out / "distill.json").write_text(json.dumps(report, indent=2))
    print(
        f"distilled {args.student_layers} of {teacher_layers} layers "
        f"in {seconds:.0f} s; test {metric} {student_score:.4f} vs teacher {teacher_score:.4f}",
        file=sys.stderr,
    )
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Distillation options, shared with the one-command build."""
    g = parser.add_argument_group("distillation")
    g.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="fine-tuned classifier folder to distil (default: the model the train step makes)",
    )
    # Defaults chosen on the validation split with models.distill_sweep (docs/model.md, Distillation).
    g.add_argument("--temperature", type=float, default=1.0, help="softens the teacher's logits")
    g.add_argument(
        "--soft-weight", type=float, default=0.5, help="share of the teacher's soft targets in the loss"
    )
    g.add_argument("--distill-epochs", type=int, default=2)
    g.add_argument("--distill-learning-rate", type=float, default=1e-4)
    g.add_argument(
        "--unlabelled",
        type=Path,
        default=None,
        help="extra texts (JSON lines or plain lines), soft targets only",
    )
