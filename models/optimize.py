"""Fuse the fp32 graph for CPU with onnxruntime's transformer optimizer, and report what fused."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from onnxruntime.transformers import optimizer

# Fusions that matter for a BERT encoder on CPU. They fail silently when a graph pattern is not
# recognised (onnxruntime #10359), so the build checks the counts instead of trusting the call.
EXPECTED_FUSIONS = ("EmbedLayerNormalization", "Attention", "SkipLayerNormalization")
# Without a fused Attention every layer runs as a dozen small ops and int8 covers less of it.
REQUIRED_FUSION = "Attention"
# Hugging Face encoders whose graphs onnxruntime's "bert" optimizer handles.
BERT_LIKE = frozenset({"bert", "distilbert", "roberta", "xlm-roberta", "camembert", "electra", "mpnet"})


def optimizer_type(model_type: str) -> str:
    """onnxruntime's optimizer model type for a Hugging Face `model_type`."""
    if model_type in BERT_LIKE:
        return "bert"
    if model_type in optimizer.MODEL_TYPES:
        return model_type
    raise SystemExit(
        f"onnxruntime's transformer optimizer has no fusions for model type {model_type!r} "
        f"(it knows {sorted(BERT_LIKE | set(optimizer.MODEL_TYPES))})"
    )


def run(work: Path, allow_unfused: bool = False) -> dict[str, object]:
    """Write work/model.opt.onnx from work/model.fp32.onnx; return the fused operator counts.

    Stops the build when attention did not fuse, unless `allow_unfused`.
    """
    exported = json.loads((work / "export.json").read_text())
    # opt_level=0: only the transformer-specific Python fusions are baked into the file; ORT's own
    # graph optimizations run at session load, tuned to the machine that serves.
    model = optimizer.optimize_model(
        str(work / "model.fp32.onnx"),
        model_type=optimizer_type(exported["model_type"]),
        num_heads=exported["num_heads"],
        hidden_size=exported["hidden_size"],
        opt_level=0,
    )
    fused = {op: n for op, n in model.get_fused_operator_statistics().items() if n}
    model.save_model_to_file(str(work / "model.opt.onnx"))
    missing = [op for op in EXPECTED_FUSIONS if not fused.get(op)]
    report: dict[str, object] = {"fusions": fused, "missing_fusions": missing}
    (work / "optimize.json").write_text(json.dumps(report, indent=2))
    if REQUIRED_FUSION in missing and not allow_unfused:
        raise SystemExit(
            f"{exported['model_type']}: attention did not fuse (fused: {fused}); the model would serve "
            "slowly. Ship it anyway with --allow-unfused"
        )
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Optimization options, shared with the one-command build."""
    g = parser.add_argument_group("optimization")
    g.add_argument(
        "--allow-unfused",
        action="store_true",
        help="build even if attention did not fuse (recorded in the manifest's missing_fusions)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Optimize work/model.fp32.onnx into work/model.opt.onnx."""
    parser = argparse.ArgumentParser(prog="python -m models.optimize", description=main.__doc__)
    parser.add_argument("--work", type=Path, required=True, help="folder holding model.fp32.onnx")
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.work, args.allow_unfused), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
