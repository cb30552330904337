"""Structured pruning: heads and neurons ranked and cut out of the matrices, saved and loaded back,
and the build's pruned candidate (the pipeline end to end is in test_distill.py's student)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    DistilBertConfig,
    PreTrainedModel,
    RobertaConfig,
)

from models import encoder_layers
from models.prune import PruneOptions, check, importance, most_important
from models.train import load_classifier

TINY: dict[str, Any] = {"vocab_size": 100, "max_position_embeddings": 32, "num_labels": 3}
CONFIGS = [
    BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32, **TINY),
    DistilBertConfig(dim=16, n_layers=2, n_heads=4, hidden_dim=32, **TINY),
    RobertaConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32, **TINY),
]
IDS = ["bert", "distilbert", "roberta"]
TEXTS = [[5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16], [17, 18]]


def tiny(config: Any) -> PreTrainedModel:
    torch.manual_seed(0)
    # A copy: the model keeps its config, and pruning writes its shapes into it.
    model: PreTrainedModel = AutoModelForSequenceClassification.from_config(
        copy.deepcopy(config), attn_implementation="eager"
    )
    model.eval()
    return model


def silence(model: PreTrainedModel, head: int, neurons: list[int]) -> None:
    """Make one head of each layer and some feed-forward neurons contribute nothing: zero the
    output projections' columns that read them."""
    layout = encoder_layers.known_layout(model)
    _, _, layers = encoder_layers.layer_stack(model)
    with torch.no_grad():
        for layer in layers:
            size = encoder_layers.head_size(layer, layout)
            encoder_layers.part(layer, layout.attention_out).weight[:, head * size : (head + 1) * size] = 0
            encoder_layers.part(layer, layout.ffn_out).weight[:, neurons] = 0


def loss_of(batch: list[int], logits: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits, torch.tensor([i % 3 for i in batch]))


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_what_contributes_nothing_ranks_last_and_cutting_it_changes_nothing(
    config: Any, tmp_path: Path
) -> None:
    model = tiny(config)
    silent_neurons = list(range(0, 32, 2))  # half the width
    silence(model, head=1, neurons=silent_neurons)
    x = torch.tensor([[5, 6, 7, 8, 9]])
    before = model(input_ids=x).logits
    scores = importance(model, TEXTS, 0, loss_of, batch_size=2, seed=0)
    for heads, neurons in zip(scores.heads, scores.neurons, strict=True):
        assert heads.shape == (4,) and heads[1] == 0 and (heads[[0, 2, 3]] > 0).all()
        assert (neurons[silent_neurons] == 0).all() and (neurons > 0).sum() == 16
    # Ranking left the model as it was (its gates are gone with their hooks).
    assert torch.equal(model(input_ids=x).logits, before)
    kept_heads = [most_important(s, 0.75) for s in scores.heads]
    kept_neurons = [most_important(s, 0.5) for s in scores.neurons]
    assert kept_heads == [[0, 2, 3]] * 2
    assert all(set(k).isdisjoint(silent_neurons) for k in kept_neurons)
    encoder_layers.shrink(model, kept_heads, kept_neurons)
    layout = encoder_layers.known_layout(model)
    _, _, layers = encoder_layers.layer_stack(model)
    for layer in layers:  # physically smaller matrices, not zeros
        assert encoder_layers.part(layer, layout.qkv[0]).weight.shape == (12, 16)
        assert encoder_layers.part(layer, layout.ffn_out).weight.shape == (16, 16)
    torch.testing.assert_close(model(input_ids=x).logits, before)
    # Saved and loaded back by the build's loader, which rebuilds the smaller shapes.
    model.save_pretrained(tmp_path)
    loaded = load_classifier(str(tmp_path)).eval()
    torch.testing.assert_close(loaded(input_ids=x).logits, before)
    assert encoder_layers.attention_shape(loaded) == (3, 3 * 4)
    shapes = getattr(loaded.config, encoder_layers.CONFIG_KEY)
    assert shapes == {"heads": [3, 3], "intermediate_size": [16, 16]}
    with pytest.raises(SystemExit, match="cannot take a new head"):
        load_classifier(str(tmp_path), labels=["a", "b"])


def test_an_unpruned_model_has_no_pruned_shape() -> None:
    assert encoder_layers.attention_shape(tiny(CONFIGS[0])) is None


def test_most_important_keeps_at_least_one_in_order() -> None:
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7])
    assert most_important(scores, 0.5) == [1, 3]
    assert most_important(scores, 0.01) == [1]
    assert most_important(scores, 1.0) == [0, 1, 2, 3]


def test_options_outside_what_pruning_can_follow_stop_the_build() -> None:
    check(PruneOptions(0.5, 0.25, 10, 1))
    assert not PruneOptions(1, 1, 10, 1).prunes and PruneOptions(1, 0.5, 10, 1).prunes
    for bad in (PruneOptions(0, 0.5, 10, 1), PruneOptions(0.5, 1.5, 10, 1), PruneOptions(0.5, 0.5, 0, 1)):
        with pytest.raises(SystemExit):
            check(bad)
