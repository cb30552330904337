"""The Open Inference Protocol (KServe v2, Triton's HTTP API) for this classifier: the infer
request's one BYTES input tensor in, label and score tensors out, in JSON or in Triton's binary
tensor data extension (what `tritonclient` sends by default). Decoding and encoding only: the
texts go through the same normalization, cache and model as every other route
(service.front.api.classify_routes).

    input   "text"    BYTES  [n] or [n, 1]   the texts
    output  "label"   BYTES  [n]             the most probable label of each
            "score"   FP32   [n]             its probability (its logit with raw_scores)
            "scores"  FP32   [n, labels]     every label's, in the model's label order
            "selected" BOOL  [n, labels]     a multi-label model's only: each label at or above its
                                             threshold (the answer; "label" is the top one)

Request parameters: "raw_scores" (logits instead of probabilities), "truncate" (false: a text
longer than the model's tokens is refused, as text-embeddings-inference does), and the binary
extension's "binary_data_output" / per output "binary_data".
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from service.front.core.errors import ErrorType, ServiceError
from service.prediction import Prediction

INPUT = "text"
OUTPUTS = ("label", "score", "scores")
MULTI_LABEL_OUTPUTS = (*OUTPUTS, "selected")


def outputs_of(multi_label: bool) -> tuple[str, ...]:
    """The output tensors of a model, single- or multi-label."""
    return MULTI_LABEL_OUTPUTS if multi_label else OUTPUTS


JSON_LENGTH_HEADER = b"inference-header-content-length"
# More digits than any body's length has: int() never sees Python's 4,300-digit limit (a ValueError).
JSON_LENGTH_DIGITS = 20
LENGTH = struct.Struct("<I")  # a BYTES element's length, in the binary extension


class Tensor(BaseModel):
    """An input tensor: its data inline (JSON) or in the body after the JSON (binary extension)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=[INPUT])
    shape: list[int] = Field(examples=[[2]])
    datatype: str = Field(examples=["BYTES"])
    parameters: dict[str, Any] = Field(default_factory=dict)
    data: list[Any] | None = Field(None, examples=[["I love it", "awful"]])


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["label"])
    parameters: dict[str, Any] = Field(default_factory=dict)


class InferRequest(BaseModel):
    """POST /v2/models/{model_name}/infer."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[OutputTensor]


@dataclass(frozen=True, slots=True)
class Asked:
    """What an infer request asks: its texts (as sent) and how to answer."""

    id: str | None
    texts: list[str]
    outputs: tuple[tuple[str, bool], ...]  # (name, as binary data), in the order asked
    raw_scores: bool
    truncate: bool


def _invalid(message: str) -> ServiceError:
    return ServiceError(ErrorType.INVALID_TENSOR, message)


def _flag(parameters: dict[str, Any], name: str, default: bool, where: str) -> bool:
    value = parameters.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(f"{where}parameters.{name} must be true or false")
    return value


def split_body(body: bytes, json_length: bytes | None) -> tuple[bytes, bytes]:
    """The JSON object and the binary tensor data after it (none without the length header)."""
    if json_length is None:
        return body, b""
    # ASCII digits only (bytes.isdigit): int() would also take a sign, spaces, underscores and,
    # decoded, other scripts' digits.
    plain = json_length.isdigit() and len(json_length) <= JSON_LENGTH_DIGITS
    if not plain or int(json_length) > len(body):
        raise _invalid("Inference-Header-Content-Length must be the JSON object's length within the body")
    split = int(json_length)
    return body[:split], body[split:]


def read_request(
    request: InferRequest, binary: bytes, check_count: Callable[[int], None], model_outputs: Sequence[str]
) -> Asked:
    """The texts and answer options of a validated request; 400 `invalid_tensor` for a tensor this
    model cannot take (name, datatype, shape, size, encoding) or an output it does not have (its
    `model_outputs`). `check_count` (the routes' batch bound) sees the shape's count before any
    text is decoded."""
    if len(request.inputs) != 1:
        raise _invalid(f"{len(request.inputs)} input tensors; this model takes one, {INPUT!r}")
    [tensor] = request.inputs
    if tensor.name != INPUT:
        raise _invalid(f"input tensor {tensor.name!r}: this model's input is {INPUT!r}")
    if tensor.datatype != "BYTES":
        raise _invalid(f"input {INPUT!r} has datatype {tensor.datatype}; it must be BYTES (the texts)")
    shape = tensor.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 0:
        raise _invalid(f"input {INPUT!r} has shape {shape}; it must be [n] or [n, 1]")
    count = shape[0]
    check_count(count)
    size = tensor.parameters.get("binary_data_size")
    if size is None:
        texts = _json_texts(tensor.data, count, nested=len(shape) == 2)
        if binary:
            raise _invalid("binary data follows the JSON object, but no input has a binary_data_size")
    else:
        if tensor.data is not None:
            raise _invalid(f"input {INPUT!r} has both data and a binary_data_size")
        if not isinstance(size, int) or isinstance(size, bool) or size != len(binary):
            raise _invalid(
                f"input {INPUT!r}: binary_data_size {size!r}, but {len(binary)} bytes follow the JSON"
            )
        texts = _binary_texts(binary, count)
    binary_output = _flag(request.parameters, "binary_data_output", False, "")
    default = [RequestedOutput(name=n) for n in model_outputs]
    asked = request.outputs if request.outputs is not None else default
    outputs = []
    for i, output in enumerate(asked):
        if output.name not in model_outputs:
            raise _invalid(f"output {output.name!r}: this model's outputs are {', '.join(model_outputs)}")
        outputs.append(
            (output.name, _flag(output.parameters, "binary_data", binary_output, f"outputs[{i}]."))
        )
    if len({name for name, _ in outputs}) != len(outputs):
        raise _invalid("an output is asked for twice")
    return Asked(
        request.id,
        texts,
        tuple(outputs),
        _flag(request.parameters, "raw_scores", False, ""),
        _flag(request.parameters, "truncate", True, ""),
    )


def _json_texts(data: list[Any] | None, count: int, nested: bool) -> list[str]:
    if data is None:
        raise _invalid(f"input {INPUT!r} has no data (and no binary_data_size)")
    if nested and all(isinstance(row, list) for row in data):  # [[t], [t]] for shape [n, 1]
        if any(len(row) != 1 for row in data):
            raise _invalid(f"input {INPUT!r} of shape [{count}, 1] has a row that is not one text")
        data = [row[0] for row in data]
    if len(data) != count:
        raise _invalid(f"input {INPUT!r} has {len(data)} elements; its shape says {count}")
    for i, text in enumerate(data):
        if not isinstance(text, str):
            raise _invalid(f"{INPUT}[{i}] is not a string")
    return data


def _binary_texts(binary: bytes, count: int) -> list[str]:
    texts, at = [], 0
    for i in range(count):
        if at + LENGTH.size > len(binary):
            raise _invalid(f"input {INPUT!r}: the binary data ends before element {i}")
        (length,) = LENGTH.unpack_from(binary, at)
        at += LENGTH.size
        if at + length > len(binary):
            raise _invalid(f"input {INPUT!r}: element {i} runs past the binary data")
        try:
            texts.append(binary[at : at + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise _invalid(f"{INPUT}[{i}] is not UTF-8") from None
        at += length
    if at != len(binary):
        raise _invalid(f"input {INPUT!r}: {len(binary) - at} bytes left after its {count} elements")
    return texts


def encode_response(
    asked: Asked, predictions: Sequence[Prediction], labels: Sequence[str], name: str, version: str
) -> tuple[bytes, int | None]:
    """The response body, and the JSON object's length when binary data follows it (for the
    Inference-Header-Content-Length header; None for a JSON-only answer)."""
    n = len(predictions)
    outputs: list[dict[str, Any]] = []
    binary: list[bytes] = []
    for output, as_binary in asked.outputs:
        values: list[Any]
        if output == "label":
            values, datatype, shape = [p.label for p in predictions], "BYTES", [n]
        elif output == "score":
            values = [p.logits[p.scores.index(p.score)] if asked.raw_scores else p.score for p in predictions]
            datatype, shape = "FP32", [n]
        elif output == "selected":
            values = [label in (p.selected or ()) for p in predictions for label in labels]
            datatype, shape = "BOOL", [n, len(labels)]
        else:
            values = [v for p in predictions for v in (p.logits if asked.raw_scores else p.scores)]
            datatype, shape = "FP32", [n, len(labels)]
        tensor: dict[str, Any] = {"name": output, "datatype": datatype, "shape": shape}
        if as_binary:
            data = _pack(values, datatype)
            tensor["parameters"] = {"binary_data_size": len(data)}
            binary.append(data)
        else:
            tensor["data"] = values
        outputs.append(tensor)
    response: dict[str, Any] = {"model_name": name, "model_version": version, "outputs": outputs}
    if asked.id is not None:
        response["id"] = asked.id
    head = to_json(response)
    if not binary:
        return head, None
    return head + b"".join(binary), len(head)


def _pack(values: list[Any], datatype: str) -> bytes:
    if datatype == "FP32":
        return struct.pack(f"<{len(values)}f", *values)
    if datatype == "BOOL":  # one byte each, as Triton packs them
        return bytes(values)
    return b"".join(LENGTH.pack(len(b)) + b for b in (v.encode() for v in values))


def check_model(path_params: dict[str, str], name: str, version: str) -> None:
    """404 `not_found` unless the path names the served model (and its version, if it names one)."""
    asked, asked_version = path_params["model_name"], path_params.get("model_version")
    if asked != name or asked_version not in (None, version):
        shown = f"{asked!r}" + (f" version {asked_version!r}" if asked_version else "")
        raise ServiceError(
            ErrorType.NOT_FOUND,
            f"model {shown} is not served here; this server serves {name!r} version {version}",
        )


def metadata(name: str, version: str, labels: Sequence[str], multi_label: bool) -> dict[str, Any]:
    """GET /v2/models/{name}: the model's tensors."""
    selected = [{"name": "selected", "datatype": "BOOL", "shape": [-1, len(labels)]}] if multi_label else []
    return {
        "name": name,
        "versions": [version],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "score", "datatype": "FP32", "shape": [-1]},
            {"name": "scores", "datatype": "FP32", "shape": [-1, len(labels)]},
            *selected,
        ],
    }
