"""Where an encoder keeps its transformer layers and the matrices inside them, and the surgery on
them: layers kept by distillation (models.distill), attention heads and feed-forward neurons cut by
structured pruning (models.prune).

Pruning removes rows and columns, so what is left is a smaller dense model that exports, fuses and
quantizes like any other (zeros in a dense matrix would save ONNX Runtime nothing). Every layer
keeps the same number of heads and of neurons: ONNX Runtime's attention fusion takes one head
count for the whole graph. A pruned model's config records what each layer kept
(`structured_pruning`); `restore` rebuilds those shapes before its weights are loaded, which
Hugging Face's loader cannot do by itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.pytorch_utils import prune_linear_layer

CONFIG_KEY = "structured_pruning"  # in config.json: {"heads": [per layer], "intermediate_size": [...]}


def layer_stack(model: PreTrainedModel) -> tuple[nn.Module, str, nn.ModuleList]:
    """The encoder's list of transformer layers, with its parent and attribute name.

    BERT and RoBERTa keep it in `encoder.layer`, DistilBERT in `transformer.layer`: the one
    ModuleList as long as the config's layer count.
    """
    total = model.config.num_hidden_layers
    for module in model.modules():
        for attribute, child in module.named_children():
            if isinstance(child, nn.ModuleList) and len(child) == total:
                return module, attribute, child
    raise SystemExit(
        f"no list of {total} layers in {type(model).__name__}: no layer, head or neuron can be cut"
    )


@dataclass(frozen=True)
class Layout:
    """Where one transformer layer keeps the matrices pruning cuts (dotted attribute paths)."""

    attention: str  # the module holding the head size
    qkv: tuple[str, str, str]  # rows of these are heads' outputs
    attention_out: str  # its columns are heads' inputs
    ffn_in: str  # rows are neurons
    ffn_out: str  # columns are neurons


LAYOUTS = (
    # BERT, RoBERTa, XLM-R, ELECTRA, MiniLM...
    Layout(
        "attention.self",
        ("attention.self.query", "attention.self.key", "attention.self.value"),
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    ),
    # DistilBERT
    Layout(
        "attention",
        ("attention.q_lin", "attention.k_lin", "attention.v_lin"),
        "attention.out_lin",
        "ffn.lin1",
        "ffn.lin2",
    ),
)


def part(module: nn.Module, path: str) -> Any:
    """The submodule (or attribute) at a dotted path."""
    return functools.reduce(getattr, path.split("."), module)


def _set(module: nn.Module, path: str, value: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(part(module, parent) if parent else module, name, value)


def layout_of(model: PreTrainedModel) -> Layout | None:
    """The layout of the model's transformer layers; None for one pruning does not know."""
    _, _, layers = layer_stack(model)
    for layout in LAYOUTS:
        paths = (*layout.qkv, layout.attention_out, layout.ffn_in, layout.ffn_out)
        try:
            parts = [part(layers[0], p) for p in paths]
            head_size(layers[0], layout)
        except AttributeError:
            continue
        if all(isinstance(p, nn.Linear) for p in parts):
            return layout
    return None


def shrink(model: PreTrainedModel, heads: Sequence[Sequence[int]], neurons: Sequence[Sequence[int]]) -> None:
    """Keep only these heads and feed-forward neurons of each layer (indexes), in place; the config
    records the shapes for `restore`."""
    layout = known_layout(model)
    _, _, layers = layer_stack(model)
    for layer, kept_heads, kept_neurons in zip(layers, heads, neurons, strict=True):
        size = head_size(layer, layout)
        rows = cast(torch.LongTensor, torch.tensor([h * size + i for h in kept_heads for i in range(size)]))
        for path in layout.qkv:
            _set(layer, path, prune_linear_layer(part(layer, path), rows, dim=0))
        _set(layer, layout.attention_out, prune_linear_layer(part(layer, layout.attention_out), rows, dim=1))
        # Transformers 5 reshapes with -1 heads; older releases read the module's own counts.
        attention = part(layer, layout.attention)
        for count in ("num_attention_heads", "n_heads"):
            if hasattr(attention, count):
                setattr(attention, count, len(kept_heads))
        if hasattr(attention, "all_head_size"):
            attention.all_head_size = len(kept_heads) * size
        kept = cast(torch.LongTensor, torch.tensor(list(kept_neurons), dtype=torch.long))
        _set(layer, layout.ffn_in, prune_linear_layer(part(layer, layout.ffn_in), kept, dim=0))
        _set(layer, layout.ffn_out, prune_linear_layer(part(layer, layout.ffn_out), kept, dim=1))
    setattr(
        model.config,
        CONFIG_KEY,
        {"heads": [len(h) for h in heads], "intermediate_size": [len(n) for n in neurons]},
    )


def restore(model: PreTrainedModel) -> bool:
    """Give a model built from a pruned config its pruned shapes (weights to be loaded after);
    False when the config is not a pruned one."""
    shapes = getattr(model.config, CONFIG_KEY, None)
    if not shapes:
        return False
    shrink(model, [range(n) for n in shapes["heads"]], [range(n) for n in shapes["intermediate_size"]])
    return True


def attention_shape(model: PreTrainedModel) -> tuple[int, int] | None:
    """(heads, heads x head size) of a pruned model's attention: what ONNX Runtime's fusion must be
    told, since the exported graph's reshapes say -1 heads; None when the model is not pruned."""
    shapes = getattr(model.config, CONFIG_KEY, None)
    if not shapes:
        return None
    layout = known_layout(model)
    _, _, layers = layer_stack(model)
    heads = shapes["heads"][0]
    return heads, heads * head_size(layers[0], layout)


def known_layout(model: PreTrainedModel) -> Layout:
    """The model's layout, or the build stops with what to do instead."""
    layout = layout_of(model)
    if layout is None:
        raise SystemExit(
            f"{type(model).__name__}: pruning knows BERT-like and DistilBERT layers only; "
            "build without it (--keep-heads 1 --keep-ffn 1)"
        )
    return layout


def head_size(layer: nn.Module, layout: Layout) -> int:
    """The width of one attention head of a layer."""
    return int(part(layer, layout.attention).attention_head_size)
