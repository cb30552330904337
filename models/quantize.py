"""Dynamic int8 quantization of the optimized graph (weights int8 offline, activations at run time)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic


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


def run(work: Path, options: QuantOptions) -> dict[str, object]:
    """Write work/model.int8.onnx from work/model.opt.onnx."""
    quantize(work / "model.opt.onnx", work / "model.int8.onnx", options)
    report: dict[str, object] = {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "activations": "QUInt8, dynamic range per tensor at run time",
        **asdict(options),
        "fp32_bytes": (work / "model.opt.onnx").stat().st_size,
        "int8_bytes": (work / "model.int8.onnx").stat().st_size,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Quantize work/model.opt.onnx into work/model.int8.onnx."""
    parser = argparse.ArgumentParser(prog="python -m models.quantize", description=main.__doc__)
    parser.add_argument("--work", type=Path, required=True, help="folder holding model.opt.onnx")
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.work, options_from(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
