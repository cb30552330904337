"""text-embeddings-inference's `POST /predict` on the real service: TEI-shaped requests and answers,
through the same cache, limits, errors, auth and metrics as /v1/classify."""

from __future__ import annotations

import math

import httpx
import pytest

from load_tests.server import RunningService
from tests.conftest import Built
from tests.service.conftest import classify, sample


def predict(svc: RunningService, body: object) -> httpx.Response:
    return httpx.post(svc.url + "/predict", json=body, timeout=30)


def test_one_text_gets_every_label_by_descending_probability(
    service: RunningService, small_model: Built
) -> None:
    response = predict(service, {"inputs": "what a lovely morning"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [set(item) for item in answer] == [{"label", "score"}] * 3
    assert sorted(item["label"] for item in answer) == sorted(small_model.manifest["labels"])
    scores = [item["score"] for item in answer]
    assert scores == sorted(scores, reverse=True) and math.isclose(sum(scores), 1.0, rel_tol=1e-6)
    # The same model and numbers as the service's own route.
    ours = classify(service, "what a lovely morning").json()
    assert {item["label"]: item["score"] for item in answer} == pytest.approx(ours["scores"])


def test_batches_in_both_shapes_answer_a_list_per_text_in_order(service: RunningService) -> None:
    texts = ["I hate waiting", "the meeting is at noon", "best day ever"]
    plain = predict(service, {"inputs": texts})
    nested = predict(service, {"inputs": [[t] for t in texts]})
    assert plain.status_code == nested.status_code == 200
    assert plain.json() == nested.json()
    singles = [predict(service, {"inputs": t}).json() for t in texts]
    assert plain.json() == singles


def test_raw_scores_are_the_logits_whose_softmax_is_the_probabilities(service: RunningService) -> None:
    text = "not sure how I feel about this"
    probabilities = {i["label"]: i["score"] for i in predict(service, {"inputs": text}).json()}
    raw = predict(service, {"inputs": text, "raw_scores": True}).json()
    assert [i["label"] for i in raw] == sorted(probabilities, key=probabilities.__getitem__, reverse=True)
    logits = {i["label"]: i["score"] for i in raw}
    total = sum(math.exp(v) for v in logits.values())
    assert {k: math.exp(v) / total for k, v in logits.items()} == pytest.approx(probabilities)
    assert any(v < 0 or v > 1 for v in logits.values())  # not probabilities


def test_a_text_past_the_models_tokens_needs_truncate_as_in_tei(
    service: RunningService, small_model: Built
) -> None:
    long = " ".join(["wonderful"] * (small_model.manifest["max_sequence_length"] + 10))
    refused = predict(service, {"inputs": ["fine", long]})
    assert refused.status_code == 413
    assert refused.json()["error_type"] == "too_many_tokens"
    assert "inputs[1]" in refused.json()["error"] and '"truncate": true' in refused.json()["error"]
    assert predict(service, {"inputs": long, "truncate": True}).status_code == 200
    left = {"inputs": long, "truncation_direction": "Left", "truncate": True}
    assert predict(service, left).status_code == 422


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"inputs": [["a question", "a passage"]]}, "validation_error"),  # a pair: not a single text
        ({"inputs": []}, "empty_text"),
        ({"inputs": "   "}, "empty_text"),
        ({"inputs": 42}, "validation_error"),
        ({"input": "typo in the field name"}, "validation_error"),
        ({"inputs": ["ok"] * 1000}, "too_many_texts"),
    ],
)
def test_client_mistakes_are_4xx_in_the_error_shape(
    service: RunningService, body: object, error_type: str
) -> None:
    response = predict(service, body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error_type"] == error_type


def test_it_shares_the_cache_and_is_counted_under_its_route(service: RunningService) -> None:
    text = "a text first seen through predict 7f3a"
    before = sample(service, "textclf_request_duration_seconds_count", route="/predict", status_class="2xx")
    assert predict(service, {"inputs": text}).status_code == 200
    assert classify(service, text).json()["cached"] is True
    after = sample(service, "textclf_request_duration_seconds_count", route="/predict", status_class="2xx")
    assert after == before + 1
