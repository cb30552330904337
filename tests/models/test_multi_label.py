"""Multi-label models, built by the real pipeline: data, training and distillation with a sigmoid
per label, F1 and thresholds chosen on validation, gates on macro-F1, a classifier packaged as is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models import data, layout, multi_label, tweet_tags
from models.distill import NO_LABEL, distillation_loss
from models.evaluate import sigmoid_scores
from service.artifact import MULTI_LABEL
from service.manifest import load_artifact
from service.model.classifier import Classifier
from tests.conftest import Built, run_build

LABELS = ["link", "mention", "negative", "question"]


def test_the_tags_are_the_rules_a_reader_can_check() -> None:
    rows = [
        data.Example("@ana is this yours? https://x.co/a", ("neutral",)),
        data.Example("worst day ever", ("negative",)),
        data.Example("lovely weather", ("positive",)),
    ]
    assert [e.labels for e in tweet_tags.tagged(rows)] == [("mention", "link", "question"), ("negative",), ()]


def test_a_csv_with_a_separator_and_json_lines_give_the_same_splits(tweet_tags: Path, tmp_path: Path) -> None:
    sizes = ["--validation-size", "100", "--test-size", "200"]
    csv = ["--csv", str(tweet_tags / "tweet-tags.csv"), "--label-column", "tags", "--label-separator", "|"]
    assert data.main(["--out", str(tmp_path / "csv"), *csv, *sizes]) == 0
    assert (
        data.main(["--out", str(tmp_path / "jsonl"), "--csv", str(tweet_tags / "tweet-tags.jsonl"), *sizes])
        == 0
    )
    for split in data.SPLITS:
        assert data.read_split(tmp_path / "csv", split) == data.read_split(tmp_path / "jsonl", split)
    assert data.problem_type(tmp_path / "csv") == MULTI_LABEL
    rows = data.read_split(tmp_path / "jsonl", "train")
    assert any(not e.labels for e in rows) and any(len(e.labels) > 1 for e in rows)


def test_thresholds_are_the_grids_best_f1_per_label() -> None:
    scores = np.array([[0.9, 0.2], [0.7, 0.35], [0.3, 0.1], [0.2, 0.05]])
    gold = np.array([[1, 0], [1, 1], [0, 0], [0, 0]])
    # Any threshold in (0.3, 0.7] separates label 0, and any in (0.2, 0.35] label 1: the nearest 0.5 wins.
    assert multi_label.choose_thresholds(scores, gold) == [0.5, 0.35]
    table = multi_label.f1_table(scores >= np.array([0.5, 0.35]), gold, ["a", "b"])
    assert table["per_label_f1"] == {"a": 1.0, "b": 1.0} and table["macro_f1"] == 1.0


def test_the_student_learns_the_teachers_probability_of_each_label() -> None:
    teacher = torch.tensor([[3.0, -2.0, 0.5]])
    unlabelled = torch.full((1, 3), float(NO_LABEL))

    def loss(student: torch.Tensor) -> float:
        return float(distillation_loss(student, teacher, unlabelled, temperature=2.0, soft_weight=0.5))

    assert loss(teacher) < loss(teacher + 1) and loss(teacher) < loss(-teacher)
    # The labels count too: a student agreeing with them (positive where labelled 1) loses less.
    labelled = torch.tensor([[1.0, 0.0, 1.0]])

    def mixed(student: torch.Tensor) -> float:
        return float(distillation_loss(student, teacher, labelled, temperature=2.0, soft_weight=0.5))

    assert mixed(torch.tensor([[3.0, -2.0, 2.0]])) < mixed(torch.tensor([[3.0, -2.0, -1.0]]))


def test_a_multi_label_build_is_gated_on_macro_f1_at_thresholds_chosen_on_validation(
    multi_label_model: Built,
) -> None:
    m = multi_label_model.manifest
    assert (m["problem_type"], m["labels"], m["name"]) == (MULTI_LABEL, LABELS, "minilm-tweet-tags-l2")
    assert m["gates"]["metric"] == "macro_f1"
    for row in ("fp32", "int8", "baseline", "teacher"):
        assert 0.0 <= m["accuracy"][row]["macro_f1"] <= 1.0, row
    assert set(m["accuracy"]["int8"]["per_label_f1"]) == set(LABELS)
    assert m["accuracy"]["baseline"]["model"] == "tfidf-1-2gram+one-vs-rest-logreg"
    assert m["distillation"]["teacher"]["problem_type"] == MULTI_LABEL
    assert sum(m["label_mix"].values()) == pytest.approx(1.0)
    # The served thresholds are the (fused) int8 model's best on the validation split, never on test.
    artifact = load_artifact(multi_label_model.artifact)
    classifier = Classifier.from_artifact(artifact, graph="fused")
    validation = data.read_split(multi_label_model.work / "data", "validation")
    gold = multi_label.gold_matrix([e.labels for e in validation], LABELS)
    chosen = multi_label.choose_thresholds(sigmoid_scores(classifier, [e.text for e in validation]), gold)
    assert dict(zip(LABELS, chosen, strict=True)) == m["thresholds"]


def test_the_student_is_distilled_with_a_sigmoid_per_label(multi_label_model: Built) -> None:
    student = layout.student_folder(multi_label_model.work, 2) / "checkpoint"
    config = json.loads((student / "config.json").read_text())
    assert (config["problem_type"], config["num_hidden_layers"]) == (MULTI_LABEL, 2)
    report = json.loads((student / "distill.json").read_text())
    assert 0.0 <= report["student_test_micro_f1_pytorch"] <= 1.0
    # Its pruned copy learns the same way (ranked and recovered on the binary cross-entropy
    # distillation), is gated on macro-F1 too, and both were timed for the choice.
    pruned = Built(layout.candidate(layout.pruned_folder(multi_label_model.work, 2)), multi_label_model.work)
    assert pruned.manifest["problem_type"] == MULTI_LABEL
    assert [len(h) for h in pruned.manifest["pruning"]["kept_heads"]] == [6, 6]
    assert set(multi_label_model.manifest["choice"]["p50_ms"]) == {"student", "pruned student"}


def test_a_multi_label_classifier_is_packaged_without_retraining(
    multi_label_classifier: Built, multi_label_model: Built
) -> None:
    m = multi_label_classifier.manifest
    assert m["training"]["trained"] is False
    assert m["name"] == "minilm-tweet-tags-l6"  # named for what the classifier was built from
    assert (m["problem_type"], m["labels"]) == (MULTI_LABEL, LABELS)
    assert set(m["thresholds"]) == set(LABELS) and m["gates"]["metric"] == "macro_f1"
    assert m["data"]["problem_type"] == MULTI_LABEL


def test_a_single_label_classifier_with_multi_label_data_is_refused_by_name(
    small_model: Built, tweet_tags: Path, tmp_path: Path
) -> None:
    # The single-label model's labels, several to a row: the labels agree, the problem does not.
    rows = tmp_path / "several.jsonl"
    labels = [["negative", "neutral"], ["positive"], []]
    rows.write_text(
        "".join(json.dumps({"text": f"text {i}", "labels": labels[i % 3]}) + "\n" for i in range(600))
    )
    result = run_build(tmp_path / "out", "--source", str(small_model.work / "checkpoint"), "--csv", str(rows))
    assert result.returncode != 0
    assert "is a single-label classifier" in result.stderr and "the data is multi-label" in result.stderr
    assert "] export" not in result.stderr and "Traceback" not in result.stderr
