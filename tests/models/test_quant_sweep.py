from __future__ import annotations

from models.quant_sweep import VARIANTS, variant_name
from models.quantize import QuantOptions


def test_every_sweep_row_names_every_option_and_no_two_rows_are_the_same() -> None:
    names = [variant_name(graph, options) for graph, options in VARIANTS]
    assert len(set(names)) == len(names) == len({(g, o) for g, o in VARIANTS})
    # The default build's options are one of the rows, under a name that says what they are.
    assert variant_name("model.opt.onnx", QuantOptions()) in names
    assert variant_name("model.opt.onnx", QuantOptions()) == (
        "QInt8, per-channel, full range, MatMul+Attention, fused graph"
    )
    assert variant_name("model.opt.onnx", QuantOptions(per_channel=False)) == (
        "QInt8, per-tensor, full range, MatMul+Attention, fused graph"
    )
