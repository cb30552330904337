"""Export a fine-tuned HF classifier to ONNX with dynamic batch and sequence axes; check parity."""

from __future__ import annotations

import argparse
import inspect
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedModel

from models import data, encoder_layers
from models.options import from_args
from models.train import load_classifier, problem_of
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def model_inputs(model: PreTrainedModel) -> list[str]:
    """The standard inputs this architecture's forward() takes (DistilBERT has no token_type_ids)."""
    accepted = inspect.signature(model.forward).parameters
    return [name for name in INPUTS if name in accepted]


def max_sequence_length(model: PreTrainedModel, requested: int) -> int:
    """The longest input the service will feed: the request, capped by the position embeddings."""
    positions = int(getattr(model.config, "max_position_embeddings", requested))
    return min(requested, positions)


def export(model: PreTrainedModel, onnx_path: Path) -> list[str]:
    """Write an fp32 ONNX graph whose batch and sequence axes are dynamic."""
    names = model_inputs(model)
    sample = {name: torch.ones((1, 8), dtype=torch.long) for name in names}
    if "token_type_ids" in sample:
        sample["token_type_ids"] = torch.zeros((1, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {"logits": {0: "batch"}}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in torch 2.x, but its graphs are the ones
        # onnxruntime's BERT fusions match; the dynamo exporter's graphs fuse far less.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(sample[n] for n in names),
            str(onnx_path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return names


@torch.no_grad()
def parity(model: PreTrainedModel, onnx_path: Path, tokenizer: TextTokenizer, texts: Sequence[str]) -> float:
    """Max abs logit difference between PyTorch and ONNX Runtime on real, unpadded texts."""
    model.eval()
    session = OnnxClassifierSession(onnx_path, threads=1)
    worst = 0.0
    for text in texts:
        ids = tokenizer.encode(text).input_ids
        reference = model(input_ids=torch.from_numpy(ids)).logits.numpy()
        worst = max(worst, float(np.abs(session.logits(ids) - reference).max()))
    return worst


@dataclass(frozen=True)
class ExportOptions:
    """The longest input the service will feed, and the ONNX-vs-PyTorch check."""

    max_length: int
    parity_texts: int
    parity_tolerance: float


def run(checkpoint: Path, data_dir: Path, work: Path, args: ExportOptions) -> dict[str, object]:
    """Export `checkpoint` to work/model.fp32.onnx, copy tokenizer.json, and check parity."""
    model = load_classifier(str(checkpoint)).eval()
    max_length = max_sequence_length(model, args.max_length)
    onnx_path = work / "model.fp32.onnx"
    names = export(model, onnx_path)
    # Always a fast tokenizer's JSON, even if the folder only had vocab.txt.
    AutoTokenizer.from_pretrained(str(checkpoint)).backend_tokenizer.save(str(work / "tokenizer.json"))
    tokenizer = TextTokenizer(work / "tokenizer.json", max_length)
    texts = [e.text for e in data.read_split(data_dir, "test")[: args.parity_texts]]
    diff = parity(model, onnx_path, tokenizer, texts)
    if diff > args.parity_tolerance:
        raise SystemExit(
            f"ONNX logits differ from PyTorch by {diff:.2e} > --parity-tolerance {args.parity_tolerance}"
        )
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    # What the optimizer's attention fusion needs: a pruned model's attention is narrower than its
    # hidden size, and its graph's reshapes do not say how many heads it has.
    heads, width = encoder_layers.attention_shape(model) or (
        int(getattr(model.config, "num_attention_heads", getattr(model.config, "n_heads", 0))),
        int(getattr(model.config, "hidden_size", getattr(model.config, "dim", 0))),
    )
    report: dict[str, object] = {
        "opset": OPSET,
        "inputs": names,
        "labels": labels,
        "problem_type": problem_of(model),
        "max_sequence_length": max_length,
        "parity_texts": len(texts),
        "parity_max_abs_diff": diff,
        "model_type": model.config.model_type,
        "num_heads": heads,
        "hidden_size": width,
    }
    (work / "export.json").write_text(json.dumps(report, indent=2))
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Export options, shared with the one-command build."""
    g = parser.add_argument_group("export")
    g.add_argument("--max-length", type=int, default=256, help="max tokens the service feeds (truncation)")
    g.add_argument("--parity-texts", type=int, default=200)
    g.add_argument("--parity-tolerance", type=float, default=1e-3)


def main(argv: Sequence[str] | None = None) -> int:
    """Export a fine-tuned classifier folder to ONNX and check it against PyTorch."""
    parser = argparse.ArgumentParser(prog="python -m models.export", description=main.__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True, help="HF folder written by models.train")
    parser.add_argument("--data", type=Path, required=True, help="folder written by models.data")
    parser.add_argument("--work", type=Path, required=True, help="folder for model.fp32.onnx")
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(args.checkpoint, args.data, args.work, from_args(ExportOptions, args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
