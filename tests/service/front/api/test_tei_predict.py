"""text-embeddings-inference's `POST /predict` on the real service: TEI-shaped requests and answers,
through the same cache, limits, errors, auth and metrics as /v1/classify."""

from __future__ import annotations

import math

import httpx
import pytest
from huggingface_hub import InferenceClient

from load_tests.server import RunningService
from tests.conftest import Built
from tests.service.conftest import classify, sample

pytestmark = pytest.mark.usefixtures("local_hub_client")  # InferenceClient talks to 127.0.0.1


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


def test_fields_tei_does_not_know_are_ignored_as_tei_does(service: RunningService) -> None:
    plain = predict(service, {"inputs": "fine by me"}).json()
    extra = predict(service, {"inputs": "fine by me", "normalize": True, "prompt_name": None}).json()
    assert extra == plain


def batch_scores(svc: RunningService, texts: list[str]) -> list[dict[str, float]]:
    response = httpx.post(svc.url + "/v1/classify/batch", json={"texts": texts}, timeout=30)
    return [result["scores"] for result in response.json()["results"]]


def raw_logits(svc: RunningService, text: str) -> dict[str, float]:
    return {i["label"]: i["score"] for i in predict(svc, {"inputs": text, "raw_scores": True}).json()}


@pytest.mark.parametrize("path", ["", "/predict"])
def test_the_hugging_face_client_gets_what_the_batch_route_answers(
    service: RunningService, path: str
) -> None:
    # The client most teams use against TEI endpoints: given the base URL it posts to "/", as TEI
    # answers a classifier there; given /predict, there. It always sends a "parameters" object.
    client = InferenceClient(model=service.url + path)
    texts = ["the train is late again", "lunch was great", "meeting moved to 3pm"]
    for text, expected in zip(texts, batch_scores(service, texts), strict=True):
        answer = client.text_classification(text)
        assert [e.label for e in answer] == sorted(expected, key=expected.__getitem__, reverse=True)
        assert {e.label: e.score for e in answer} == pytest.approx(expected)


def test_top_k_keeps_the_k_labels_of_highest_score(service: RunningService, small_model: Built) -> None:
    client = InferenceClient(model=service.url)
    text = "what a day it has been"
    every = client.text_classification(text)
    assert len(every) == len(small_model.manifest["labels"])
    for k in (1, 2):
        assert client.text_classification(text, top_k=k) == every[:k]
    assert client.text_classification(text, top_k=50) == every


def test_function_to_apply_scores_the_logits_as_hugging_face_names_it(service: RunningService) -> None:
    client = InferenceClient(model=service.url)
    text = "not bad, not great"
    logits = raw_logits(service, text)
    total = sum(math.exp(v) for v in logits.values())
    expected = {
        "softmax": {k: math.exp(v) / total for k, v in logits.items()},
        "sigmoid": {k: 1 / (1 + math.exp(-v)) for k, v in logits.items()},
        "none": logits,
    }
    for function, scores in expected.items():
        answer = client.text_classification(text, function_to_apply=function)  # type: ignore[arg-type]
        assert {e.label: e.score for e in answer} == pytest.approx(scores)
        # Highest first (the service's softmax and this one may differ in the last bit).
        assert [e.score for e in answer] == sorted((e.score for e in answer), reverse=True)
    # The model's own function by default: a single-label model's is softmax.
    default = client.text_classification(text)
    assert {e.label: e.score for e in default} == pytest.approx(expected["softmax"])


def test_function_to_apply_decides_over_raw_scores(service: RunningService) -> None:
    text = "so so"
    asked = {"inputs": text, "raw_scores": True, "parameters": {"function_to_apply": "softmax", "top_k": 2.0}}
    softmax = {"inputs": text, "parameters": {"function_to_apply": "softmax", "top_k": 2}}
    assert predict(service, asked).json() == predict(service, softmax).json()


def test_with_parameters_the_answer_holds_a_list_per_input(service: RunningService) -> None:
    # Hugging Face's task shape (a list per input, even for one); TEI's (one list for one text) without.
    flat = predict(service, {"inputs": "a quiet evening"}).json()
    nested = predict(service, {"inputs": "a quiet evening", "parameters": {}}).json()
    assert nested == [flat]
    batch = predict(service, {"inputs": ["a", "b"], "parameters": {"top_k": 1}}).json()
    assert [len(answer) for answer in batch] == [1, 1]


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": "x", "parameters": {"top_k": 0}},
        {"inputs": "x", "parameters": {"top_k": "2"}},
        {"inputs": "x", "parameters": {"function_to_apply": "relu"}},
        {"inputs": "x", "parameters": []},
    ],
)
def test_parameters_no_function_can_honour_are_refused_by_name(service: RunningService, body: object) -> None:
    response = predict(service, body)
    assert response.status_code == 422, response.text
    assert response.json()["error_type"] == "validation_error"
    assert any(word in response.json()["error"] for word in ("top_k", "function_to_apply", "parameters"))
