"""Measure quantize_dynamic variants on the validation split: accuracy, agreement and speed.

Run on a built work folder; the defaults in models.quantize come from this table on the target CPU.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from sklearn.metrics import accuracy_score

from models import data, latency
from models.evaluate import predict
from models.quantize import QuantOptions, quantize
from service.model.classifier import Classifier
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer

FUSED, UNFUSED = "model.opt.onnx", "model.fp32.onnx"
BOTH_OPS = ("MatMul", "Attention")
# (graph the quantizer reads, options), every option spelled out: "unfused" quantizes the raw
# export, so ORT fuses at load time what it can; the others quantize the optimized graph.
VARIANTS: tuple[tuple[str, QuantOptions], ...] = tuple(
    (FUSED, QuantOptions(weight, per_channel, reduce_range, BOTH_OPS))
    for weight in ("QInt8", "QUInt8")
    for per_channel in (False, True)
    for reduce_range in (False, True)
) + (
    (FUSED, QuantOptions("QInt8", True, False, ("MatMul",))),
    (UNFUSED, QuantOptions("QInt8", True, False, ("MatMul",))),
)


def variant_name(graph: str, options: QuantOptions) -> str:
    """Every option of a row in its name, so each row can be rebuilt from its name alone."""
    parts = [
        options.weight_type,
        "per-channel" if options.per_channel else "per-tensor",
        "reduce_range" if options.reduce_range else "full range",
        "+".join(options.op_types),
        "unfused graph" if graph == UNFUSED else "fused graph",
    ]
    return ", ".join(parts)


def run(work: Path, runs: int) -> list[dict[str, object]]:
    """One row per variant, plus the fp32 reference as the first row."""
    exported = json.loads((work / "export.json").read_text())
    label_ids = {label: i for i, label in enumerate(exported["labels"])}
    validation = data.read_split(work / "data", "validation")
    texts, gold = [e.text for e in validation], [label_ids[e.label] for e in validation]
    tokenizer = TextTokenizer(work / "tokenizer.json", exported["max_sequence_length"])
    inputs = {n: latency.inputs_of_length(tokenizer, texts[:200], n) for n in (16, 64)}
    out = work / "sweep"
    out.mkdir(exist_ok=True)
    paths = {"fp32 (reference)": work / "model.opt.onnx"}
    options_of: dict[str, tuple[str, QuantOptions | None]] = {}
    for graph, options in VARIANTS:
        label = variant_name(graph, options)
        options_of[label] = (graph, options)
        paths[label] = out / f"variant_{len(options_of)}.onnx"
        quantize(work / graph, paths[label], options)

    def classifier(path: Path) -> Classifier:
        return Classifier(tokenizer, OnnxClassifierSession(path, threads=2), exported["labels"])

    fp32_pred = predict(classifier(paths["fp32 (reference)"]), texts)
    sessions = {label: OnnxClassifierSession(p, threads=1) for label, p in paths.items()}
    lat = latency.measure(sessions, inputs, runs=runs)
    rows: list[dict[str, object]] = []
    for label, path in paths.items():
        pred = predict(classifier(path), texts)
        graph, opts = options_of.get(label, (FUSED, None))
        rows.append(
            {
                "variant": label,
                "graph": graph,
                "options": asdict(opts) if opts else None,
                "validation_accuracy": round(float(accuracy_score(gold, pred)), 4),
                "agreement_with_fp32": round(
                    sum(a == b for a, b in zip(pred, fp32_pred, strict=True)) / len(texts), 4
                ),
                "p50_ms_16": lat[label]["16"]["p50_ms"],
                "p50_ms_64": lat[label]["64"]["p50_ms"],
                "mb": round(path.stat().st_size / 1e6, 1),
            }
        )
    return rows


def markdown(rows: Sequence[dict[str, object]]) -> str:
    """The sweep as a Markdown table."""
    head = (
        "| variant | val. accuracy | agreement with fp32 | p50 ms @16 | p50 ms @64 | MB |\n"
        "|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r['variant']} | {r['validation_accuracy']:.4f} | {r['agreement_with_fp32']:.4f} | "
        f"{r['p50_ms_16']} | {r['p50_ms_64']} | {r['mb']} |\n"
        for r in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Compare quantization variants on a built work folder (validation split, 1-thread latency)."""
    parser = argparse.ArgumentParser(prog="python -m models.quant_sweep", description=main.__doc__)
    parser.add_argument("--work", type=Path, required=True, help="work folder of a finished build")
    parser.add_argument("--latency-runs", type=int, default=300)
    args = parser.parse_args(argv)
    rows = run(args.work, args.latency_runs)
    (args.work / "sweep" / "sweep.json").write_text(json.dumps(rows, indent=2))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
