"""The Open Inference Protocol (KServe v2) against the real service: the real `tritonclient` (binary
tensors, its default, and JSON), plain JSON bodies, and bad tensors answered 400, never 500."""

from __future__ import annotations

import http.client
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from load_tests.server import RunningService, running_service
from service.front.api.open_inference import split_body
from service.front.core.errors import ErrorType, ServiceError
from tests.conftest import Built
from tests.service.conftest import sample

TEXTS = ["what a great game", "so tired of this", "the bus leaves at 9", "ünïcödé ✓ 🙂"]


@pytest.fixture(scope="module")
def svc(small_model: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    log = tmp_path_factory.mktemp("v2") / "service.log"
    with running_service(small_model.artifact, log, workers=1) as running:
        yield running


@pytest.fixture(scope="module")
def client(svc: RunningService) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(url=svc.url.removeprefix("http://")) as c:
        yield c


def as_text(element: bytes | str) -> str:
    """A BYTES element as tritonclient gives it: bytes from binary data, str from JSON."""
    return element.decode() if isinstance(element, bytes) else element


def reference(svc: RunningService, texts: list[str]) -> list[dict[str, Any]]:
    """What /v1/classify/batch answers for the same texts: the one classification path."""
    answer = httpx.post(svc.url + "/v1/classify/batch", json={"texts": texts}, timeout=30)
    assert answer.status_code == 200
    return list(answer.json()["results"])


def infer(
    svc: RunningService, body: dict[str, Any], model: str | None = None, **kwargs: Any
) -> httpx.Response:
    name = model or httpx.get(svc.url + "/v1/model", timeout=10).json()["name"]
    return httpx.post(f"{svc.url}/v2/models/{name}/infer", json=body, timeout=30, **kwargs)


def texts_input(texts: list[Any], shape: list[int] | None = None, **changes: Any) -> dict[str, Any]:
    return {"name": "text", "datatype": "BYTES", "shape": shape or [len(texts)], "data": texts} | changes


@pytest.mark.parametrize("binary", [True, False], ids=["binary tensors", "json tensors"])
def test_tritonclient_infers_what_the_batch_route_answers(
    svc: RunningService, client: triton.InferenceServerClient, small_model: Built, binary: bool
) -> None:
    name, labels = small_model.manifest["name"], small_model.manifest["labels"]
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata(name)
    assert metadata["versions"] == [small_model.manifest["version"]]
    assert [t["name"] for t in metadata["inputs"]] == ["text"]
    assert [(t["name"], t["datatype"]) for t in metadata["outputs"]] == [
        ("label", "BYTES"),
        ("score", "FP32"),
        ("scores", "FP32"),
    ]
    tensor = triton.InferInput("text", [len(TEXTS)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object), binary_data=binary)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("label", "score", "scores")]
    result = client.infer(name, [tensor], outputs=outputs, request_id="req-7")
    expected = reference(svc, TEXTS)
    assert result.get_response()["id"] == "req-7"
    assert list(map(as_text, result.as_numpy("label"))) == [e["label"] for e in expected]
    assert result.as_numpy("score") == pytest.approx([e["score"] for e in expected], abs=1e-6)
    scores = result.as_numpy("scores")
    assert scores.shape == (len(TEXTS), len(labels))
    flat = [e["scores"][lb] for e in expected for lb in labels]  # row by row, in the model's label order
    assert scores.ravel().tolist() == pytest.approx(flat, abs=1e-6)
    # The client's default: no outputs named, every one back as binary data.
    default = client.infer(name, [tensor], model_version=small_model.manifest["version"])
    assert list(map(as_text, default.as_numpy("label"))) == [e["label"] for e in expected]


def test_plain_json_bodies_nested_shapes_and_parameters(svc: RunningService, small_model: Built) -> None:
    labels = small_model.manifest["labels"]
    nested = infer(
        svc, {"inputs": [texts_input([[t] for t in TEXTS[:2]], [2, 1])], "outputs": [{"name": "label"}]}
    )
    assert nested.status_code == 200 and nested.headers["content-type"] == "application/json"
    body = nested.json()
    assert body["model_name"] == small_model.manifest["name"]
    assert body["model_version"] == small_model.manifest["version"]
    assert body["outputs"] == [
        {
            "name": "label",
            "datatype": "BYTES",
            "shape": [2],
            "data": [e["label"] for e in reference(svc, TEXTS[:2])],
        }
    ]
    # raw_scores: logits, as /predict's raw_scores gives them.
    raw = infer(svc, {"inputs": [texts_input(TEXTS[:1])], "parameters": {"raw_scores": True}})
    [scores] = [o for o in raw.json()["outputs"] if o["name"] == "scores"]
    logits = httpx.post(
        svc.url + "/predict", json={"inputs": TEXTS[0], "raw_scores": True}, timeout=30
    ).json()
    by_label = {item["label"]: item["score"] for item in logits}
    assert scores["data"] == pytest.approx([by_label[lb] for lb in labels], abs=1e-5)
    # truncate false: a text past the model's tokens is refused, as /predict does.
    long = infer(svc, {"inputs": [texts_input(["words " * 400])], "parameters": {"truncate": False}})
    assert (long.status_code, long.json()["error_type"]) == (413, "too_many_tokens")
    assert infer(svc, {"inputs": [texts_input(["words " * 400])]}).status_code == 200


def binary_body(texts: list[str], size_delta: int = 0) -> tuple[bytes, dict[str, str]]:
    data = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    head = (
        b'{"inputs":[{"name":"text","datatype":"BYTES","shape":[%d],"parameters":{"binary_data_size":%d}}]}'
        % (len(texts), len(data) + size_delta)
    )
    return head + data, {"Inference-Header-Content-Length": str(len(head))}


BAD_TENSORS: dict[str, tuple[dict[str, Any], str]] = {
    "wrong datatype": ({"inputs": [texts_input(["a"], datatype="FP32")]}, "datatype FP32"),
    "wrong name": ({"inputs": [texts_input(["a"], name="input_ids")]}, "'input_ids'"),
    "wrong shape": ({"inputs": [texts_input(["a", "b", "c", "d"], [2, 2])]}, "shape [2, 2]"),
    "shape and data disagree": ({"inputs": [texts_input(["a", "b"], [3])]}, "2 elements"),
    "two inputs": ({"inputs": [texts_input(["a"]), texts_input(["b"])]}, "2 input tensors"),
    "not strings": ({"inputs": [texts_input([1, 2])]}, "text[0] is not a string"),
    "no data": ({"inputs": [texts_input(["a"], data=None)]}, "no data"),
    "unknown output": ({"inputs": [texts_input(["a"])], "outputs": [{"name": "logits"}]}, "'logits'"),
    "a flag that is not one": (
        {"inputs": [texts_input(["a"])], "parameters": {"raw_scores": "yes"}},
        "raw_scores",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TENSORS))
def test_a_bad_tensor_is_a_clear_400(svc: RunningService, case: str) -> None:
    body, says = BAD_TENSORS[case]
    answer = infer(svc, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_type"] == "invalid_tensor" and says in answer.json()["error"]


def test_binary_tensors_that_do_not_add_up_are_400s(svc: RunningService) -> None:
    model = httpx.get(svc.url + "/v1/model", timeout=10).json()["name"]
    url = f"{svc.url}/v2/models/{model}/infer"
    good, headers = binary_body(["one", "two"])
    assert httpx.post(url, content=good, headers=headers, timeout=30).status_code == 200
    for body, hdrs in (
        binary_body(["one", "two"], size_delta=1),  # says one byte more than follows
        (good[:-1], headers),  # the last element cut short
        (good, {"Inference-Header-Content-Length": str(len(good) + 5)}),  # a JSON longer than the body
        (good.replace(b"two", b"\xff\xfe\xfd"), headers),  # not UTF-8
    ):
        answer = httpx.post(url, content=body, headers=hdrs, timeout=30)
        assert (answer.status_code, answer.json()["error_type"]) == (400, "invalid_tensor"), answer.text
    # A shape past the batch limit is refused before any element is decoded.
    tensor = {"name": "text", "datatype": "BYTES", "shape": [10**6], "parameters": {"binary_data_size": 4}}
    head = json.dumps({"inputs": [tensor]}).encode()
    huge = httpx.post(
        url, content=head + bytes(4), headers={"Inference-Header-Content-Length": str(len(head))}
    )
    assert (huge.status_code, huge.json()["error_type"]) == (422, "too_many_texts")
    compressed = httpx.post(url, content=good, headers=headers | {"Content-Encoding": "gzip"}, timeout=30)
    assert compressed.status_code == 415


def json_length_cases(head: int, body: int) -> dict[str, str]:
    """Inference-Header-Content-Length values that are not a plain length within the body; the
    ones int() takes would each be the right length (`head`)."""
    n = str(head)
    return {
        "thousands of digits": "9" * 5000,  # past int()'s 4,300 digits: a ValueError
        "20 zeros and the length": "0" * 20 + n,
        "a sign": "+" + n,
        "whitespace after": n + " ",  # leading whitespace is the HTTP parser's to drop
        "whitespace inside": f"{n[0]} {n[1:]}",
        "an underscore": f"{n[0]}_{n[1:]}",
        "negative": "-1",
        "another script's digit": "\N{SUPERSCRIPT TWO}",  # str.isdigit() says yes, int() no
        "past the body": str(body + 1),
    }


def test_a_json_length_that_is_not_a_plain_length_within_the_body_is_400(svc: RunningService) -> None:
    model = httpx.get(svc.url + "/v1/model", timeout=10).json()["name"]
    good, headers = binary_body(["one", "two"])
    head = int(headers["Inference-Header-Content-Length"])
    logged = svc.log.stat().st_size
    answers = {}
    # http.client, as httpx would refuse to send some of these headers.
    connection = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)
    for case, value in json_length_cases(head, len(good)).items():
        connection.request(
            "POST", f"/v2/models/{model}/infer", good, {"Inference-Header-Content-Length": value}
        )
        answer = connection.getresponse()
        answers[case] = (answer.status, json.loads(answer.read()).get("error_type"))
    connection.close()
    assert answers == dict.fromkeys(answers, (400, "invalid_tensor"))
    with svc.log.open() as log:
        log.seek(logged)
        written = log.read()
    assert "Traceback" not in written and "internal_error" not in written


NOT_PLAIN_LENGTHS = {
    "space before": b" 5",  # which the HTTP parser drops before it gets here
    "space after": b"5 ",
    "tab": b"\t5",
    "sign": b"+5",
    "underscore": b"5_0",
    "negative": b"-1",
    "not ASCII": b"\xb2",
    "5000 digits": b"9" * 5000,
    "empty": b"",
}


@pytest.mark.parametrize("case", list(NOT_PLAIN_LENGTHS))
def test_split_body_takes_only_ascii_digits(case: str) -> None:
    with pytest.raises(ServiceError) as err:
        split_body(b"{}" * 10, NOT_PLAIN_LENGTHS[case])
    assert err.value.error_type == ErrorType.INVALID_TENSOR
    assert split_body(b"{}" * 10, b"2") == (b"{}", b"{}" * 9)


def test_another_model_is_404_and_the_usual_limits_hold(svc: RunningService, small_model: Built) -> None:
    other = infer(svc, {"inputs": [texts_input(["a"])]}, model="not-this-one")
    assert (other.status_code, other.json()["error_type"]) == (404, "not_found")
    name, version = small_model.manifest["name"], small_model.manifest["version"]
    wrong_version = httpx.get(f"{svc.url}/v2/models/{name}/versions/0/ready", timeout=10)
    assert wrong_version.status_code == 404
    assert httpx.get(f"{svc.url}/v2/models/{name}/versions/{version}/ready", timeout=10).status_code == 200
    assert infer(svc, {"inputs": [texts_input(["   "])]}).json()["error_type"] == "empty_text"
    many = infer(svc, {"inputs": [texts_input(["t"] * 65)]})
    assert (many.status_code, many.json()["error_type"]) == (422, "too_many_texts")
    assert infer(svc, {"inputs": "no"}).status_code == 422
    assert (
        httpx.post(
            f"{svc.url}/v2/models/{name}/infer", content=b"{", headers={"content-type": "application/json"}
        ).json()["error_type"]
        == "invalid_json"
    )
    # Counted under its route template, as every API route is.
    route = {"route": "/v2/models/{model_name}/infer"}
    assert sample(svc, "textclf_request_duration_seconds_count", status_class="2xx", **route) >= 1
    assert sample(svc, "textclf_request_duration_seconds_count", status_class="4xx", **route) >= 4


def test_the_v2_routes_need_a_token_where_the_api_does(small_model: Built, tmp_path: Path) -> None:
    token = "s3cret-0123456789"  # 16 characters at least
    env = {"TEXTCLF_API_TOKENS": token}
    with running_service(
        small_model.artifact, tmp_path / "service.log", workers=1, env=env, token=token
    ) as s:
        assert httpx.get(s.url + "/v2/health/ready", timeout=10).status_code == 200  # a probe: open
        body = {"inputs": [texts_input(["a"])]}
        assert infer(s, body, model=small_model.manifest["name"]).status_code == 401
        authorized = {"Authorization": f"Bearer {token}"}
        assert infer(s, body, model=small_model.manifest["name"], headers=authorized).status_code == 200
        assert httpx.get(s.url + "/v2", timeout=10).status_code == 401
