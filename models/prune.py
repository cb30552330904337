"""Prune a distilled student: rank its attention heads and feed-forward neurons on the training
split, cut the least important out (models.encoder_layers), and let the smaller model learn from
the teacher again. The teacher's logits are the ones the distillation step saved, not computed
twice, so the step costs one epoch of a model smaller than the student.

Importance follows Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"): each head's
output and each neuron's activation is multiplied by a gate fixed at 1, and |d loss / d gate|
(the distillation loss), summed over batches, ranks it; for a neuron that is its activation times
its gradient.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedModel

from models import distill, train
from models.distill import DistillOptions, Lesson, distillation_loss, load_lesson
from models.encoder_layers import head_size, known_layout, layer_stack, layout_of, part, shrink
from models.options import from_args
from models.train import LossOf, TrainOptions, length_bucketed_batches, load_classifier, optimise, padded


@dataclass(frozen=True)
class PruneOptions:
    """How much of each layer is kept, and how the smaller model recovers."""

    keep_heads: float
    keep_ffn: float
    importance_texts: int
    recover_epochs: int

    @property
    def prunes(self) -> bool:
        """Whether anything is cut at all (1 and 1: no pruned candidate is built)."""
        return self.keep_heads < 1 or self.keep_ffn < 1


@dataclass(frozen=True)
class Importance:
    """Per layer: a score for each attention head and for each feed-forward neuron."""

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]


def importance(
    model: PreTrainedModel, ids: Sequence[list[int]], pad: int, loss_of: LossOf, batch_size: int, seed: int
) -> Importance:
    """Score heads and neurons by |d loss / d gate| summed over `ids`; the model is not changed."""
    layout = known_layout(model)
    _, _, layers = layer_stack(model)
    head_gates = [
        torch.ones(part(layer, layout.qkv[0]).out_features // head_size(layer, layout), requires_grad=True)
        for layer in layers
    ]
    neuron_gates = [
        torch.ones(part(layer, layout.ffn_in).out_features, requires_grad=True) for layer in layers
    ]
    hooks = []
    for layer, heads, neurons in zip(layers, head_gates, neuron_gates, strict=True):
        # The heads' outputs, side by side, are the input of the attention's output projection;
        # the neurons' activations (after the non-linearity), the feed-forward output's input.
        hooks += [
            part(layer, layout.attention_out).register_forward_pre_hook(
                lambda _, args, g=heads: ((args[0].unflatten(-1, (len(g), -1)) * g[:, None]).flatten(-2),)
            ),
            part(layer, layout.ffn_out).register_forward_pre_hook(lambda _, args, g=neurons: (args[0] * g,)),
        ]
    scores = Importance(
        [torch.zeros_like(g) for g in head_gates], [torch.zeros_like(g) for g in neuron_gates]
    )
    model.eval()  # no dropout: the gradients of the model as it will run
    try:
        for batch in length_bucketed_batches([len(s) for s in ids], batch_size, seed):
            input_ids, mask = padded(ids, batch, pad)
            loss = loss_of(batch, model(input_ids=input_ids, attention_mask=mask).logits)
            grads = torch.autograd.grad(loss, [*head_gates, *neuron_gates])
            for i in range(len(layers)):
                scores.heads[i] += grads[i].abs()
                scores.neurons[i] += grads[len(layers) + i].abs()
    finally:
        for hook in hooks:
            hook.remove()
    return scores


def unprunable(student_dir: Path) -> str | None:
    """Why the model in `student_dir` cannot be pruned (layers of a kind pruning does not know), or None."""
    model = load_classifier(str(student_dir))
    if layout_of(model) is None:
        return f"pruning knows BERT-like and DistilBERT layers, not {type(model).__name__}'s"
    return None


def most_important(scores: torch.Tensor, keep: float) -> list[int]:
    """Indexes of the `keep` fraction (at least one) with the highest scores, in order."""
    n = max(1, round(keep * len(scores)))
    return sorted(scores.argsort(descending=True)[:n].tolist())


def prune(
    options: PruneOptions,
    distilling: DistillOptions,
    training: TrainOptions,
    student_dir: Path,
    out: Path,
) -> dict[str, object]:
    """Prune the student saved in `student_dir` (beside the lesson its distillation saved), let it
    recover, and save it to `out`; the report."""
    torch.set_num_threads(training.threads)
    torch.manual_seed(training.seed)
    lesson: Lesson = load_lesson(student_dir)
    model = load_classifier(str(student_dir))

    def loss_of(batch: list[int], logits: torch.Tensor) -> torch.Tensor:
        soft, labels = lesson.soft_targets[batch], lesson.labels[batch]
        return distillation_loss(logits, soft, labels, distilling.temperature, distilling.soft_weight)

    started = time.monotonic()
    # The lesson's texts are the training split in its seeded order: a prefix is a random sample.
    scores = importance(
        model, lesson.ids[: options.importance_texts], lesson.pad, loss_of, training.batch_size, training.seed
    )
    ranked = time.monotonic() - started
    heads = [most_important(s, options.keep_heads) for s in scores.heads]
    neurons = [most_important(s, options.keep_ffn) for s in scores.neurons]
    shrink(model, heads, neurons)
    optimise(
        model,
        lesson.ids,
        lesson.pad,
        loss_of,
        options.recover_epochs,
        distilling.distill_learning_rate,
        training,
        "recover",
    )
    seconds = time.monotonic() - started
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(student_dir)).save_pretrained(out)
    report: dict[str, object] = {
        **asdict(options),
        "method": "gate gradients (Michel et al. 2019), the least important cut out, then distillation",
        "kept_heads": heads,
        "heads_per_layer": [len(s) for s in scores.heads],
        "kept_ffn_width": [len(n) for n in neurons],
        "ffn_width": [len(s) for s in scores.neurons],
        "importance_seconds": round(ranked, 1),
        "seconds": round(seconds, 1),
    }
    (out / "prune.json").write_text(json.dumps(report, indent=2))
    print(
        f"pruned to {len(heads[0])} heads and {len(neurons[0])} feed-forward neurons a layer "
        f"in {seconds:.0f} s",
        file=sys.stderr,
    )
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Pruning options, shared with the one-command build."""
    g = parser.add_argument_group("structured pruning (of each student)")
    # Defaults measured on the validation split (docs/model.md, Pruning).
    g.add_argument(
        "--keep-heads", type=float, default=0.5, help="share of each layer's attention heads kept (1: all)"
    )
    g.add_argument(
        "--keep-ffn", type=float, default=0.25, help="share of each layer's feed-forward width kept (1: all)"
    )
    g.add_argument(
        "--importance-texts", type=int, default=4000, help="training texts that rank heads and neurons"
    )
    g.add_argument("--recover-epochs", type=int, default=1, help="epochs of distillation after pruning")


def check(options: PruneOptions) -> None:
    """Stop on options no pruning can follow."""
    for name, share in (("--keep-heads", options.keep_heads), ("--keep-ffn", options.keep_ffn)):
        if not 0 < share <= 1:
            raise SystemExit(f"{name} must be in (0, 1], not {share}")
    if options.importance_texts < 1 or options.recover_epochs < 0:
        raise SystemExit("--importance-texts must be at least 1 and --recover-epochs at least 0")


def main(argv: Sequence[str] | None = None) -> int:
    """Prune a student that models.distill (or models.build) saved, beside its lesson."""
    parser = argparse.ArgumentParser(prog="python -m models.prune", description=main.__doc__)
    parser.add_argument("--student", type=Path, required=True, help="a distilled student's checkpoint folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the pruned model")
    parser.add_argument("--seed", type=int, default=13)
    for add in (train.add_arguments, distill.add_arguments, add_arguments):
        add(parser)
    args = parser.parse_args(argv)
    options = from_args(PruneOptions, args)
    check(options)
    distilling = from_args(DistillOptions, args, student_layers=0)
    report = prune(options, distilling, from_args(TrainOptions, args), args.student, args.out)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
