"""Which of an artifact's int8 graphs a process serves: timed on this CPU, pinned, or the only one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from service.artifact import Artifact, artifact_version
from service.manifest import load_artifact
from service.model.graphs import MIN_ROUNDS, choose, geometric_mean, trial_inputs
from service.model.session import OnnxClassifierSession
from service.model.tokenizer import TextTokenizer
from tests.conftest import Built


def tokenizer_of(artifact: Artifact) -> TextTokenizer:
    return TextTokenizer(artifact.tokenizer_path, artifact.max_sequence_length)


def runs_graph(session: OnnxClassifierSession, path: Path, tokenizer: TextTokenizer) -> bool:
    """Whether `session` runs the graph at `path`, and answers as a session of it does (one thread:
    bit for bit; on some CPUs the two graphs answer bit for bit alike too, so the file decides)."""
    ids = tokenizer.encode("the graph that answers this").input_ids
    answers = np.array_equal(session.logits(ids), OnnxClassifierSession(path).logits(ids))
    return session.path == path and bool(answers)


def operators(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(path, load_external_data=False).graph.node}


def test_the_build_ships_two_graphs_that_answer_alike(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    assert list(artifact.graphs) == ["fused", "unfused"]
    tokenizer = tokenizer_of(artifact)
    ids = tokenizer.encode("two graphs of one model").input_ids
    # Two graphs, not one file twice: the fused one's attention is one quantized operator.
    assert "QAttention" in operators(artifact.graphs["fused"])
    assert "QAttention" not in operators(artifact.graphs["unfused"])
    fused, unfused = (OnnxClassifierSession(path).logits(ids) for path in artifact.graphs.values())
    np.testing.assert_allclose(fused, unfused, atol=0.5)


def test_by_default_the_graph_timed_fastest_here_is_served(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    tokenizer = tokenizer_of(artifact)
    session, choice = choose(artifact, tokenizer, trial_seconds=0.2)
    assert choice.rule == "timed" and choice.rounds >= MIN_ROUNDS
    # Every graph at every trial length the model takes (its limit is 64 tokens).
    assert [ids.shape[1] for ids in trial_inputs(tokenizer)] == [16, 64]
    assert {name: sorted(by_length) for name, by_length in choice.p50_ms.items()} == {
        "fused": [16, 64],
        "unfused": [16, 64],
    }
    means = {name: geometric_mean(list(by_length.values())) for name, by_length in choice.p50_ms.items()}
    assert choice.served == min(means, key=means.__getitem__)
    assert runs_graph(session, artifact.graphs[choice.served], tokenizer)
    report = choice.report()
    assert report["served"] == choice.served and set(report["p50_ms"]["fused"]) == {"16", "64"}
    json.dumps(report)  # what a worker sends in its hello


@pytest.mark.parametrize("graph", ["fused", "unfused"])
def test_a_pinned_graph_is_served_untimed(small_model: Built, graph: str) -> None:
    artifact = load_artifact(small_model.artifact)
    tokenizer = tokenizer_of(artifact)
    session, choice = choose(artifact, tokenizer, graph=graph)
    assert (choice.served, choice.rule, choice.p50_ms) == (graph, "pinned", {})
    assert runs_graph(session, artifact.graphs[graph], tokenizer)


def test_a_graph_the_model_lacks_is_refused_by_name(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    with pytest.raises(ValueError, match="no graph 'matmul' .*fused, unfused"):
        choose(artifact, tokenizer_of(artifact), graph="matmul")


def test_no_trial_time_serves_the_fused_graph(small_model: Built) -> None:
    artifact = load_artifact(small_model.artifact)
    session, choice = choose(artifact, tokenizer_of(artifact), trial_seconds=0)
    assert (choice.served, choice.rule) == ("fused", "not timed")
    assert runs_graph(session, artifact.model_path, tokenizer_of(artifact))


def test_an_artifact_with_one_graph_serves_it(small_model: Built, tmp_path: Path) -> None:
    """An artifact built before graphs were shipped (or with --no-unfused-graph) names none."""
    copy = tmp_path / "one-graph"
    shutil.copytree(small_model.artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for file in ("model.unfused.onnx", "model.unfused.weights"):
        (copy / file).unlink()
        del manifest["files"][file]
    del manifest["graphs"]
    manifest["version"] = artifact_version(
        manifest["files"], manifest["labels"], manifest["max_sequence_length"]
    )
    (copy / "manifest.json").write_text(json.dumps(manifest))
    artifact = load_artifact(copy)
    assert artifact.graphs == {"fused": copy / "model.onnx"}
    _, choice = choose(artifact, tokenizer_of(artifact))
    assert (choice.served, choice.rule) == ("fused", "only one")
