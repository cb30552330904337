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


def run(work: Path) -> dict[str, object]:
    """Write work/model.opt.onnx from work/model.fp32.onnx; return the fused operator counts."""
    exported = json.loads((work / "export.json").read_text())
    # opt_level=0: only the transformer-specific Python fusions are baked into the file; ORT's own
    # graph optimizations run at session load, tuned to the machine that serves.
    model = optimizer.optimize_model(
        str(work / "model.fp32.onnx"),
        model_type="bert",
        num_heads=exported["num_heads"],
        hidden_size=exported["hidden_size"],
        opt_level=0,
    )
    fused = {op: n for op, n in model.get_fused_operator_statistics().items() if n}
    model.save_model_to_file(str(work / "model.opt.onnx"))
    missing = [op for op in EXPECTED_FUSIONS if not fused.get(op)]
    report: dict[str, object] = {"fusions": fused, "missing_fusions": missing}
    (work / "optimize.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Optimize work/model.fp32.onnx into work/model.opt.onnx."""
    parser = argparse.ArgumentParser(prog="python -m models.optimize", description=main.__doc__)
    parser.add_argument("--work", type=Path, required=True, help="folder holding model.fp32.onnx")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.work), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
