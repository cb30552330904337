from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    DistilBertConfig,
    PretrainedConfig,
    RobertaConfig,
)

from models.build import parser
from models.evaluate import EvalOptions
from models.export import ExportOptions
from models.options import from_args
from models.train import TrainOptions, length_bucketed_batches, optimise


def test_bucketed_batches_cover_every_row_once_and_group_similar_lengths() -> None:
    lengths = [(i * 37) % 60 + 3 for i in range(1000)]
    batches = length_bucketed_batches(lengths, batch_size=16, seed=0)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    assert max(len(b) for b in batches) == 16
    # Padding waste per batch is far below that of random batches (spread ~57 tokens).
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 10
    assert length_bucketed_batches(lengths, 16, seed=0) == batches
    assert length_bucketed_batches(lengths, 16, seed=1) != batches


def test_each_step_gets_its_own_typed_options_from_one_command_line() -> None:
    args = parser().parse_args(["--threads", "2", "--eval-threads", "1", "--max-length", "100"])
    assert from_args(TrainOptions, args).threads == 2
    assert from_args(EvalOptions, args).eval_threads == 1
    # The student is judged at the export's length, trained at the fine-tuning's cap.
    assert from_args(ExportOptions, args).max_length == 100
    assert from_args(TrainOptions, args).train_max_length == 64


TINY: dict[str, Any] = {"vocab_size": 50, "max_position_embeddings": 16, "num_labels": 2}
CONFIGS = [
    BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, **TINY),
    DistilBertConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=32, **TINY),
    RobertaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, **TINY),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["bert", "distilbert", "roberta"])
@pytest.mark.parametrize("train_word_embeddings", [False, True])
def test_training_moves_the_word_embeddings_only_when_asked(
    config: PretrainedConfig, train_word_embeddings: bool
) -> None:
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    words = model.get_input_embeddings().weight
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    ids = [[0, 5 + i % 9, 7, 2] for i in range(8)]
    labels = torch.tensor([i % 2 for i in range(8)])
    options = parser().parse_args(
        ["--batch-size", "4", "--quiet"] + ["--train-word-embeddings"] * train_word_embeddings
    )
    steps = optimise(
        model,
        ids,
        0,
        lambda batch, logits: torch.nn.functional.cross_entropy(logits, labels[batch]),
        epochs=1,
        learning_rate=1e-2,
        args=from_args(TrainOptions, options),
        label="test",
    )
    assert steps == 2
    moved = {p for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    # Frozen means no gradient computed at all (the time it saves), not only no update.
    assert (words in moved) is words.requires_grad is train_word_embeddings
    assert len(moved) >= len(before) - 1  # every other weight learnt
