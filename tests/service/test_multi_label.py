"""Multi-label models on the real service: a sigmoid score per label, the labels at or above their
thresholds, through /v1, /predict (and Hugging Face's client), the Open Inference Protocol and the
label mix; built from a CSV (a classifier packaged as is) and from JSON lines (distilled)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from huggingface_hub import InferenceClient

from load_tests.server import RunningService, running_service
from tests.conftest import Built
from tests.service.conftest import sample
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("local_hub_client")  # InferenceClient talks to 127.0.0.1

TEXTS = [
    "@maria did you see this? https://t.co/abc",
    "I hate how long this takes",
    "going home early today",
    "www.example.com has the schedule, @tom",
]


@pytest.fixture(scope="module")
def service(
    multi_label_classifier: Built, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    log = tmp_path_factory.mktemp("multi-label-service") / "service.log"
    with running_service(multi_label_classifier.artifact, log) as running:
        yield running


def batch(svc: RunningService, texts: list[str]) -> list[dict[str, Any]]:
    response = httpx.post(svc.url + "/v1/classify/batch", json={"texts": texts}, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def logits(svc: RunningService, text: str) -> dict[str, float]:
    raw = httpx.post(svc.url + "/predict", json={"inputs": text, "raw_scores": True}, timeout=30).json()
    return {item["label"]: item["score"] for item in raw}


def test_each_label_is_scored_on_its_own_and_answered_at_its_threshold(
    service: RunningService, multi_label_classifier: Built
) -> None:
    thresholds = multi_label_classifier.manifest["thresholds"]
    for text, result in zip(TEXTS, batch(service, TEXTS), strict=True):
        scores = result["scores"]
        # A sigmoid of each label's own logit, not a softmax over them.
        expected = {label: 1 / (1 + math.exp(-v)) for label, v in logits(service, text).items()}
        assert scores == pytest.approx(expected)
        assert result["labels"] == [label for label in thresholds if scores[label] >= thresholds[label]]
        assert (result["label"], result["score"]) == max(scores.items(), key=lambda kv: kv[1])
        single = httpx.post(service.url + "/v1/classify", json={"text": text}, timeout=30).json()
        assert {k: v for k, v in single.items() if k != "cached"} == {
            k: v for k, v in result.items() if k != "cached"
        }


def test_the_hugging_face_client_gets_the_sigmoid_scores_and_any_function_asked(
    service: RunningService,
) -> None:
    client = InferenceClient(model=service.url)
    for text, result in zip(TEXTS, batch(service, TEXTS), strict=True):
        answer = client.text_classification(text)  # the model's own function: a sigmoid per label
        assert {e.label: e.score for e in answer} == pytest.approx(result["scores"])
        assert [e.label for e in client.text_classification(text, top_k=2)] == [e.label for e in answer[:2]]
        by_logit = logits(service, text)
        total = sum(math.exp(v) for v in by_logit.values())
        softmax = client.text_classification(text, function_to_apply="softmax")
        assert {e.label: e.score for e in softmax} == pytest.approx(
            {k: math.exp(v) / total for k, v in by_logit.items()}
        )


def test_the_open_inference_protocol_adds_a_bool_tensor_of_the_selected_labels(
    service: RunningService, multi_label_classifier: Built
) -> None:
    name, labels = multi_label_classifier.manifest["name"], multi_label_classifier.manifest["labels"]
    expected = batch(service, TEXTS)
    with triton.InferenceServerClient(url=service.url.removeprefix("http://")) as client:
        outputs = client.get_model_metadata(name)["outputs"]
        assert outputs[-1] == {"name": "selected", "datatype": "BOOL", "shape": [-1, len(labels)]}
        for binary in (True, False):
            tensor = triton.InferInput("text", [len(TEXTS)], "BYTES")
            tensor.set_data_from_numpy(
                np.array([t.encode() for t in TEXTS], dtype=object), binary_data=binary
            )
            asked = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("selected", "scores")]
            result = client.infer(name, [tensor], outputs=asked)
            selected = result.as_numpy("selected")
            assert selected.dtype == np.bool_ and selected.shape == (len(TEXTS), len(labels))
            assert selected.tolist() == [[label in e["labels"] for label in labels] for e in expected]


def test_the_label_mix_counts_every_selected_label(
    service: RunningService, multi_label_classifier: Built
) -> None:
    name, labels = multi_label_classifier.manifest["name"], multi_label_classifier.manifest["labels"]

    def counts() -> dict[str, float]:
        return {lb: sample(service, "textclf_predictions_total", model=name, label=lb) for lb in labels}

    before = counts()
    texts = [f"{text} ({i})" for i, text in enumerate(TEXTS)]
    answered = [lb for result in batch(service, texts) for lb in result["labels"]]
    assert answered, "these texts have a mention or a link: some label is selected"
    expected = {lb: before[lb] + answered.count(lb) for lb in labels}
    wait_until(lambda: counts() == expected, f"each selected label counted: {expected}")


def test_the_distilled_json_lines_model_is_served_multi_label_too(
    multi_label_model: Built, tmp_path: Path
) -> None:
    with running_service(multi_label_model.artifact, tmp_path / "service.log", workers=1) as svc:
        [result] = batch(svc, TEXTS[:1])
        assert result["model"] == {
            "name": "minilm-tweet-tags-l2",
            "version": multi_label_model.manifest["version"],
        }
        assert isinstance(result["labels"], list)
        assert not math.isclose(sum(result["scores"].values()), 1.0)
