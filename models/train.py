"""Fine-tune the encoder with a classification head (PyTorch, build time only)."""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import safetensors.torch
import torch
from tqdm import tqdm
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from models import data, encoder_layers, multi_label, source
from models.options import from_args
from service.artifact import MULTI_LABEL, SINGLE_LABEL, ProblemType


def load_classifier(
    location: str, labels: Sequence[str] | None = None, problem: ProblemType = SINGLE_LABEL
) -> PreTrainedModel:
    """Load a sequence classifier with eager attention (the pattern ORT's fusions recognise); with
    `labels`, a new head for them, single- or multi-label."""
    kwargs: dict[str, object] = {"attn_implementation": "eager"}
    if labels is not None:
        kwargs |= {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
            "problem_type": problem,
        }
    config = AutoConfig.from_pretrained(location)
    if getattr(config, encoder_layers.CONFIG_KEY, None):
        # A pruned model (models.prune): its matrices are smaller than its config says.
        if labels is not None:
            raise SystemExit(f"{location} is a pruned classifier: it cannot take a new head")
        pruned: PreTrainedModel = AutoModelForSequenceClassification.from_config(config, **kwargs)
        encoder_layers.restore(pruned)
        # models.prune saves one file (save_pretrained's default shard size is far above a student's).
        pruned.load_state_dict(safetensors.torch.load_file(str(Path(location) / "model.safetensors")))
        pruned.eval()  # as from_pretrained leaves a model
        return pruned
    model: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(location, **kwargs)
    return model


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of similar lengths in random order: little padding, still shuffled."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lengths.__getitem__)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def padded(ids: Sequence[list[int]], batch: Sequence[int], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask of the texts `batch` indexes, padded to the longest."""
    width = max(len(ids[i]) for i in batch)
    input_ids = torch.tensor([ids[i] + [pad] * (width - len(ids[i])) for i in batch])
    mask = torch.tensor([[1] * len(ids[i]) + [0] * (width - len(ids[i])) for i in batch])
    return input_ids, mask


def problem_of(model: PreTrainedModel) -> ProblemType:
    """A classifier's problem type; a config without one is single-label (transformers' default)."""
    return MULTI_LABEL if model.config.problem_type == MULTI_LABEL else SINGLE_LABEL


@torch.no_grad()
def predict_logits(
    model: PreTrainedModel, tokenizer: object, texts: Sequence[str], max_length: int
) -> torch.Tensor:
    """The PyTorch model's logits for texts (batched, padded: a quick build-time check)."""
    model.eval()
    chunks = []
    for i in range(0, len(texts), 64):
        enc = tokenizer(  # type: ignore[operator]
            list(texts[i : i + 64]), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        chunks.append(model(**enc).logits)
    return torch.cat(chunks)


def predict_ids(
    model: PreTrainedModel, tokenizer: object, texts: Sequence[str], max_length: int
) -> list[int]:
    """The PyTorch model's top label ids for texts."""
    return cast(list[int], predict_logits(model, tokenizer, texts, max_length).argmax(-1).tolist())


def multi_hot(examples: Sequence[data.Example], label2id: dict[str, int]) -> torch.Tensor:
    """One row per example, 1.0 in the columns of its labels (in the model's label order)."""
    labels = sorted(label2id, key=label2id.__getitem__)
    return torch.from_numpy(multi_label.gold_matrix([e.labels for e in examples], labels)).float()


def quality(
    model: PreTrainedModel, tokenizer: object, examples: Sequence[data.Example], max_length: int
) -> tuple[str, float]:
    """The PyTorch model's accuracy on examples, or a multi-label model's micro-F1 at 0.5."""
    label2id = cast(dict[str, int], model.config.label2id)
    logits = predict_logits(model, tokenizer, [e.text for e in examples], max_length)
    if problem_of(model) == MULTI_LABEL:
        return "micro_f1", multi_label.micro_f1((logits > 0).numpy(), multi_hot(examples, label2id).numpy())
    pred = logits.argmax(-1).tolist()
    correct = sum(p == label2id[e.label] for p, e in zip(pred, examples, strict=True))
    return "accuracy", correct / max(len(examples), 1)


@dataclass(frozen=True)
class TrainOptions:
    """Fine-tuning: the source encoder and the optimisation (shared by distillation)."""

    source: str
    epochs: int
    batch_size: int
    learning_rate: float
    train_max_length: int
    threads: int
    quiet: bool
    seed: int
    train_word_embeddings: bool


LossOf = Callable[[list[int], torch.Tensor], torch.Tensor]  # (batch's text indexes, logits) -> loss


def optimise(
    model: PreTrainedModel,
    ids: Sequence[list[int]],
    pad: int,
    loss_of: LossOf,
    epochs: int,
    learning_rate: float,
    args: TrainOptions,
    label: str,
) -> int:
    """Train `model` on token ids for `epochs`; return the steps taken.

    AdamW with a linear warm-up over 6% of the steps then a linear decay to zero, length-bucketed
    batches of `args.batch_size`, gradients clipped at 1, the word embeddings frozen unless
    `args.train_word_embeddings`. Fine-tuning and distillation differ only in `loss_of`.
    """
    total = math.ceil(len(ids) / args.batch_size) * epochs
    # The word embeddings are half a MiniLM's weights; one or two epochs on a few thousand texts
    # move them little, and updating them costs a student step a quarter of its time (docs/model.md).
    model.get_input_embeddings().weight.requires_grad_(args.train_word_embeddings)
    trained = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel for all tensors; the per-tensor loop cost a student step a fifth of its time.
    optimizer = torch.optim.AdamW(trained, lr=learning_rate, weight_decay=0.01, fused=True)
    warmup = max(1, int(0.06 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    model.train()
    bar = tqdm(total=total, desc=label, unit="step", file=sys.stderr, mininterval=5, disable=args.quiet)
    for epoch in range(epochs):
        for batch in length_bucketed_batches([len(s) for s in ids], args.batch_size, args.seed + epoch):
            input_ids, mask = padded(ids, batch, pad)
            loss = loss_of(batch, model(input_ids=input_ids, attention_mask=mask).logits)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    return total


def train(args: TrainOptions, data_dir: Path, out: Path) -> dict[str, object]:
    """Fine-tune `args.source` on the splits in `data_dir`; save a HF folder into `out`."""
    src = source.resolve(args.source)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(src.location)
    train_rows = data.read_split(data_dir, "train")
    labels = data.labels_of(train_rows)
    problem = data.problem_type(data_dir)
    if src.fine_tuned:
        model = load_classifier(src.location)
        own = sorted(str(label) for label in (model.config.id2label or {}).values())
        if own != labels:
            raise SystemExit(
                f"--source {src.name} classifies into {own}, the data is labelled {labels}: "
                "use data with the model's labels, or an encoder (not a classifier) to fine-tune"
            )
        # A multi-label classifier reads rows of one label as label sets; the reverse cannot be.
        if problem == MULTI_LABEL and problem_of(model) == SINGLE_LABEL:
            raise SystemExit(
                f"--source {src.name} is a single-label classifier (problem_type "
                f"{model.config.problem_type!r}), the data is multi-label (label lists, a "
                "--label-separator, or rows with several labels or none): use single-label data, or a "
                "multi-label classifier or an encoder to fine-tune"
            )
        report: dict[str, object] = {"trained": False, "reason": "source is already a sequence classifier"}
    else:
        model = load_classifier(src.location, labels, problem)
        report = fit(model, tokenizer, train_rows, data.read_split(data_dir, "validation"), args)
    report["problem_type"] = problem_of(model)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    report |= {"source": src.name, "source_location": src.location, "license": src.license}
    if Path(src.location).is_dir():
        report["source_weights_sha256"] = source.weights_hash(Path(src.location))
    (out / "train.json").write_text(json.dumps(report, indent=2))
    return report


def fit(
    model: PreTrainedModel,
    tokenizer: object,
    train_rows: Sequence[data.Example],
    validation: Sequence[data.Example],
    args: TrainOptions,
) -> dict[str, object]:
    """Fine-tuning (`optimise`: all weights but the word embeddings, unless asked), AdamW with
    linear warm-up and decay, length-bucketed batches."""
    label2id = cast(dict[str, int], model.config.label2id)
    ids = tokenizer([e.text for e in train_rows], truncation=True, max_length=args.train_max_length)[  # type: ignore[operator]
        "input_ids"
    ]
    pad = tokenizer.pad_token_id  # type: ignore[attr-defined]
    functional = torch.nn.functional
    # A sigmoid per label, each learnt on its own; or one softmax over labels that exclude each other.
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    if problem_of(model) == MULTI_LABEL:
        y, loss = multi_hot(train_rows, label2id), functional.binary_cross_entropy_with_logits
    else:
        y, loss = torch.tensor([label2id[e.label] for e in train_rows]), functional.cross_entropy

    def loss_of(batch: list[int], logits: torch.Tensor) -> torch.Tensor:
        return loss(logits, y[batch])

    started = time.monotonic()
    total = optimise(model, ids, pad, loss_of, args.epochs, args.learning_rate, args, "fine-tune")
    seconds = time.monotonic() - started
    metric, value = quality(model, tokenizer, validation, args.train_max_length)
    print(f"fine-tuned {total} steps in {seconds:.0f} s; validation {metric} {value:.4f}", file=sys.stderr)
    return {
        "trained": True,
        "train_rows": len(ids),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "train_max_length": args.train_max_length,
        "train_word_embeddings": args.train_word_embeddings,
        "seconds": round(seconds, 1),
        f"validation_{metric}_pytorch": round(value, 4),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Training options, shared with the one-command build."""
    g = parser.add_argument_group("training")
    g.add_argument(
        "--source",
        default=source.DEFAULT_SOURCE,
        help="encoder: the packaged MiniLM (default), a local HF folder, or a hub id",
    )
    g.add_argument("--epochs", type=int, default=1)
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--learning-rate", type=float, default=1e-4)
    g.add_argument(
        "--train-max-length", type=int, default=64, help="token cap while training (tweets are short)"
    )
    g.add_argument(
        "--train-word-embeddings",
        action="store_true",
        help="update the word embeddings too (default: frozen; data far from the encoder's may need it)",
    )
    g.add_argument("--threads", type=int, default=torch.get_num_threads())
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: Sequence[str] | None = None) -> int:
    """Fine-tune a classifier on the splits written by models.data."""
    parser = argparse.ArgumentParser(prog="python -m models.train", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="folder written by models.data")
    parser.add_argument("--out", type=Path, required=True, help="folder for the fine-tuned HF model")
    parser.add_argument("--seed", type=int, default=13)
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(json.dumps(train(from_args(TrainOptions, args), args.data, args.out), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
