"""The score functions `/predict` and the models' answers apply to logits."""

from __future__ import annotations

import math

import pytest

from service.scores import SCORE_FUNCTIONS, sigmoid, softmax


def test_softmax_sums_to_one_and_keeps_the_order() -> None:
    scores = softmax((2.0, -1.0, 0.5))
    assert math.fsum(scores) == pytest.approx(1.0)
    assert scores[0] > scores[2] > scores[1]


def test_sigmoid_scores_each_label_on_its_own_without_overflow() -> None:
    assert sigmoid((0.0, 2.0, -2.0)) == pytest.approx((0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(2))))
    assert sigmoid((-1000.0, 1000.0)) == (0.0, 1.0)
    assert softmax((1000.0, -1000.0)) == (1.0, 0.0)


def test_the_functions_are_named_as_hugging_face_names_them() -> None:
    assert set(SCORE_FUNCTIONS) == {"softmax", "sigmoid", "none"}
    assert SCORE_FUNCTIONS["none"]([1.5, -3.0]) == (1.5, -3.0)
