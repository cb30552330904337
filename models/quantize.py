"""Dynamic int8 quantization of the optimized graph (weights int8 offline, activations at run time)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from service.artifact import PRIMARY_GRAPH, UNFUSED_GRAPH


@dataclass(frozen=True)
class QuantOptions:
    """quantize_dynamic options; defaults chosen by `python -m models.quant_sweep` (docs/model.md).

    Per-channel QInt8: on AVX2 without VNNI the U8S8 kernel can saturate (onnxruntime #5849);
    per-channel scales kept int8 closest to fp32 (98.4% agreement vs 95.8%) at the same speed.
    """

    weight_type: str = "QInt8"
    per_channel: bool = True
    reduce_range: bool = False
    op_types: tuple[str, ...] = ("MatMul", "Attention")


def quantize(src: Path, dst: Path, options: QuantOptions) -> None:
    """Write the dynamically quantized copy of `src` to `dst`."""
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType[options.weight_type],
        per_channel=options.per_channel,
        reduce_range=options.reduce_range,
        op_types_to_quantize=list(options.op_types),
        # Shape inference cannot type ORT's fused contrib ops; without a default, their
        # outputs are left untyped and quantization of the following MatMul fails.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def options_from(args: argparse.Namespace) -> QuantOptions:
    """QuantOptions from parsed command-line flags."""
    return QuantOptions(args.weight_type, args.per_channel, args.reduce_range, tuple(args.op_types))


# The int8 graphs a build makes, by the name the artifact gives them (service.artifact.PRIMARY_GRAPH
# first): the fused graph from the optimizer, and the raw export with only its MatMuls quantized,
# which ORT fuses what it can of at load time. Which runs faster depends on the CPU (docs/model.md),
# so both are shipped when both pass the gates and each node times them.
INT8_GRAPHS = {PRIMARY_GRAPH: "model.int8.onnx", UNFUSED_GRAPH: "model.int8.unfused.onnx"}
UNFUSED_OPS = ("MatMul",)


def run(work: Path, options: QuantOptions, unfused: bool = True) -> dict[str, object]:
    """Write work/model.int8.onnx from work/model.opt.onnx and, with `unfused`,
    work/model.int8.unfused.onnx from the raw export work/model.fp32.onnx."""
    if unfused and not (work / "model.fp32.onnx").is_file():
        raise SystemExit(
            f"{work}: no model.fp32.onnx (models.export) for the unfused graph; or --no-unfused-graph"
        )
    quantize(work / "model.opt.onnx", work / INT8_GRAPHS[PRIMARY_GRAPH], options)
    (work / INT8_GRAPHS[UNFUSED_GRAPH]).unlink(missing_ok=True)  # a stale one is never evaluated
    if unfused:
        unfused_options = replace(options, op_types=UNFUSED_OPS)
        quantize(work / "model.fp32.onnx", work / INT8_GRAPHS[UNFUSED_GRAPH], unfused_options)
    report: dict[str, object] = {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "activations": "QUInt8, dynamic range per tensor at run time",
        **asdict(options),
        "fp32_bytes": (work / "model.opt.onnx").stat().st_size,
        "int8_bytes": (work / INT8_GRAPHS[PRIMARY_GRAPH]).stat().st_size,
        "graphs": {
            name: {"op_types": list(options.op_types if name == PRIMARY_GRAPH else UNFUSED_OPS)}
            for name, file in INT8_GRAPHS.items()
            if (work / file).is_file()
        },
    }
    (work / "quantize.json").write_text(json.dumps(report, indent=2))
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Quantization options, shared with the one-command build."""
    d = QuantOptions()
    g = parser.add_argument_group("quantization")
    g.add_argument("--weight-type", choices=["QInt8", "QUInt8"], default=d.weight_type)
    g.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=d.per_channel)
    g.add_argument("--reduce-range", action=argparse.BooleanOptionalAction, default=d.reduce_range)
    g.add_argument("--op-types", nargs="+", default=list(d.op_types), metavar="OP")
    g.add_argument(
        "--unfused-graph",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also ship the unfused MatMul-only int8 graph; each node serves the faster (default on)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Quantize work/model.opt.onnx into work/model.int8.onnx (and the unfused graph)."""
    parser = argparse.ArgumentParser(prog="python -m models.quantize", description=main.__doc__)
    parser.add_argument(
        "--work", type=Path, required=True, help="folder holding model.opt.onnx (and model.fp32.onnx)"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.work, options_from(args), args.unfused_graph), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
