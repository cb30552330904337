"""Distillation: students cut from any encoder's layers, the loss, and the build path end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    DistilBertConfig,
    PreTrainedModel,
    RobertaConfig,
)

from load_tests import bench, ladder
from models import layout, source
from models.data import read_split
from models.distill import (
    NO_LABEL,
    distillation_loss,
    kept_layers,
    make_student,
    read_unlabelled,
    teacher_logits,
)
from models.distill_sweep import variants
from models.evaluate import GateError, check_gates
from models.export import export
from models.train import load_classifier
from tests.conftest import Built, run_build


def test_kept_layers_are_evenly_spaced_from_the_first() -> None:
    assert kept_layers(6, 3) == [0, 2, 4]
    assert kept_layers(6, 2) == [0, 3]
    assert kept_layers(12, 4) == [0, 3, 6, 9]
    for bad in (0, 6, 7):
        with pytest.raises(SystemExit):
            kept_layers(6, bad)


TINY: dict[str, Any] = {"vocab_size": 100, "max_position_embeddings": 32, "num_labels": 3}


@pytest.mark.parametrize(
    "config",
    [
        BertConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32, **TINY),
        DistilBertConfig(dim=16, n_layers=4, n_heads=2, hidden_dim=32, **TINY),
        RobertaConfig(
            hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32, **TINY
        ),
    ],
    ids=["bert", "distilbert", "roberta"],
)
def test_a_student_keeps_the_teachers_own_layers_whatever_the_architecture(
    config: object, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    teacher: PreTrainedModel = AutoModelForSequenceClassification.from_config(config)
    student, keep = make_student(teacher, 2)
    assert keep == [0, 2]
    assert student.config.num_hidden_layers == 2
    teacher_params = dict(teacher.named_parameters())
    student_params = dict(student.named_parameters())
    # Student layer i is teacher layer keep[i]; embeddings and head are the teacher's.
    for name, value in student_params.items():
        for i, j in enumerate(keep):
            name = name.replace(f"layer.{i}.", f"layer.{j}.", 1) if f"layer.{i}." in name else name
        assert torch.equal(value, teacher_params[name]), name
    assert len(student_params) < len(teacher_params)
    # Saved and loaded again, it is a 2-layer model of the same kind.
    student.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert again.config.num_hidden_layers == 2
    ids = torch.tensor([[1, 5, 7, 2]])
    assert torch.allclose(again(input_ids=ids).logits, student.eval()(input_ids=ids).logits)


def test_teacher_logits_are_its_graphs_one_text_a_run_in_text_order_whatever_the_threads(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, **TINY
    )
    teacher = AutoModelForSequenceClassification.from_config(config).eval()
    export(teacher, tmp_path / "teacher.onnx")
    ids = [[1] + [5 + i % 7] * (i % 13 + 1) + [2] for i in range(41)]  # lengths out of order
    logits = teacher_logits(tmp_path / "teacher.onnx", ids, threads=2)
    with torch.no_grad():
        one_by_one = torch.cat([teacher(input_ids=torch.tensor([row])).logits for row in ids])
    assert logits.shape == (41, 3)
    assert torch.allclose(logits, one_by_one, atol=1e-4)
    assert torch.equal(teacher_logits(tmp_path / "teacher.onnx", ids[:3], threads=8), logits[:3])


def test_the_loss_is_the_soft_part_for_unlabelled_rows_and_the_mix_for_labelled_ones() -> None:
    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    unlabelled = torch.tensor([NO_LABEL, NO_LABEL])
    # A student equal to its teacher has nothing left to learn from soft targets.
    assert distillation_loss(teacher, teacher, unlabelled, 2.0, 0.5).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 1])
    soft = distillation_loss(student, teacher, unlabelled, 2.0, 0.5)
    hard = torch.nn.functional.cross_entropy(student, labels)
    mixed = distillation_loss(student, teacher, labels, 2.0, 0.25)
    assert mixed.item() == pytest.approx(0.25 * soft.item() + 0.75 * hard.item())
    mixed.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_a_student_far_below_its_teacher_fails_the_gate() -> None:
    table = {
        "fp32": {"accuracy": 0.79},
        "int8": {"accuracy": 0.786},
        "baseline": {"accuracy": 0.70},
        "teacher": {"accuracy": 0.80},
    }
    check_gates(table, 1.0, True, teacher_tolerance_points=1.5)
    with pytest.raises(GateError, match="--student-tolerance"):
        check_gates(table, 1.0, True, teacher_tolerance_points=1.0)


@pytest.fixture(scope="module")
def student(small_model: Built, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A 2-layer student of the small model, built by `models.build --teacher`."""
    out = tmp_path_factory.mktemp("distilled") / "student"
    teacher = small_model.work / "checkpoint"
    result = run_build(out, "--teacher", str(teacher), "--student-layers", "2", "--student-tolerance", "100")
    assert result.returncode == 0, result.stderr[-4000:]
    return Built(out, out.with_name("student.work"))


def test_build_distils_a_student_from_a_given_teacher(small_model: Built, student: Built) -> None:
    teacher, built, out = small_model.work / "checkpoint", student, student.artifact
    manifest = built.manifest
    # The teacher is packaged and gated too, kept in the work folder beside the served student.
    packaged_teacher = Built(built.work / "teacher", built.work).manifest
    assert (manifest["name"], packaged_teacher["name"]) == ("minilm-sentiment-l2", "minilm-sentiment-l6")
    distilled = manifest["distillation"]
    assert distilled["teacher"]["name"] == str(teacher)
    assert distilled["teacher"]["weights_sha256"] == source.weights_hash(teacher)
    assert distilled["teacher"]["layers"] == 6
    assert distilled["teacher"]["test_accuracy_int8"] == packaged_teacher["accuracy"]["int8"]["accuracy"]
    assert (distilled["student_layers"], distilled["kept_teacher_layers"]) == (2, [0, 3])
    assert 0 < distilled["student_test_accuracy_pytorch"] <= 1
    assert 0 < distilled["student_teacher_agreement_pytorch"] <= 1
    # The student is gated on its teacher's int8 model, the one it replaces.
    assert manifest["accuracy"]["teacher"]["accuracy"] == distilled["teacher"]["test_accuracy_int8"]
    assert manifest["gates"]["student_tolerance_points"] == 100
    # The served graph has the student's 2 attention layers, fused, not the teacher's 6.
    graph = onnx.load(str(out / "model.onnx")).graph
    assert sum(node.op_type.endswith("Attention") for node in graph.node) == 2
    assert load_classifier(str(built.work / "student-2" / "checkpoint")).config.num_hidden_layers == 2


def attention_heads(model: Path) -> list[int]:
    """The head count of each fused attention node of an ONNX graph."""
    graph = onnx.load(str(model)).graph
    return [
        next(a.i for a in node.attribute if a.name == "num_heads")
        for node in graph.node
        if node.op_type.endswith("Attention")
    ]


def test_the_build_serves_the_faster_of_the_student_and_its_pruned_copy(student: Built) -> None:
    dense = Built(layout.candidate(layout.student_folder(student.work, 2)), student.work)
    pruned = Built(layout.candidate(layout.pruned_folder(student.work, 2)), student.work)
    # The pruned copy: half the heads and a quarter of the feed-forward width of each layer (the
    # defaults), cut out of the matrices: a smaller graph whose attention still fuses.
    report = pruned.manifest["pruning"]
    assert [len(kept) for kept in report["kept_heads"]] == [6, 6]
    assert report["kept_ffn_width"] == [384, 384] and report["ffn_width"] == [1536, 1536]
    assert dense.manifest["pruning"] is None
    assert attention_heads(dense.artifact / "model.onnx") == [12, 12]
    assert attention_heads(pruned.artifact / "model.onnx") == [6, 6]
    weights = [(a.artifact / "model.weights").stat().st_size for a in (pruned, dense)]
    assert weights[0] < weights[1]
    assert pruned.manifest["version"] != dense.manifest["version"]
    # Both passed the gates, were timed side by side here, and the faster is what is served.
    choice = student.manifest["choice"]
    assert choice["refused_by_the_gates"] == {}
    p50 = choice["p50_ms"]
    assert set(p50) == {"student", "pruned student"}
    assert all(set(row) == {"16"} for row in p50.values())  # 128 is past this model's 64 tokens
    assert choice["served"] == min(p50, key=lambda name: p50[name]["16"])
    assert choice["machine"]["cores"] >= 1 and isinstance(choice["machine"]["int8_flags"], list)
    served = {"student": dense, "pruned student": pruned}[choice["served"]]
    assert student.manifest["files"] == served.manifest["files"]
    assert student.manifest["version"] == served.manifest["version"]


def test_the_prune_sweep_measures_each_point_against_the_unpruned_student(student: Built) -> None:
    args = ["--work", str(student.work), "--heads", "0.5", "--ffn", "0.5", "--runs", "5", "--quiet"]
    result = subprocess.run(
        [sys.executable, "-m", "models.prune_sweep", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = {
        r.pop("point"): r
        for r in (json.loads(line) for line in result.stdout.splitlines() if line[:1] == "{")
    }
    assert list(rows) == ["unpruned", "heads 0.5, FFN 0.5"]
    for row in rows.values():
        assert 0 <= row["validation"] <= 1 and 0 <= row["test"] <= 1
        assert set(row["p50_ms"]) == {"16", "64"}  # 128 is past this model's 64 tokens
    assert rows["unpruned"]["speedup"] == {"16": 1.0, "64": 1.0}
    point = student.work / "prune-sweep" / "h0.5-f0.5"
    assert attention_heads(point / "model.int8.onnx") == [6, 6]
    assert "| 50% | 50% |" in result.stdout


def test_when_no_student_passes_the_gate_the_teacher_is_served(small_model: Built, tmp_path: Path) -> None:
    out = tmp_path / "served"
    # A negative tolerance asks each student to beat its teacher by 100 points: both are refused.
    result = run_build(
        out,
        *("--teacher", str(small_model.work / "checkpoint"), "--student-layers", "1", "3"),
        *("--student-tolerance", "-100", "--distill-epochs", "1"),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "the 1-layer student is not served" in result.stderr
    assert "the 3-layer student is not served" in result.stderr
    assert "the 3-layer pruned student is not served" in result.stderr
    assert "no student passed the gates: serving the teacher" in result.stderr
    served = Built(out, out.with_name("served.work"))
    assert served.manifest == Built(served.work / "teacher", served.work).manifest
    assert served.manifest["distillation"] is None
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "model.onnx",
        "model.unfused.onnx",
        "model.unfused.weights",
        "model.weights",
        "tokenizer.json",
    ]


def test_unlabelled_texts_are_read_from_json_lines_or_plain_lines(tmp_path: Path) -> None:
    path = tmp_path / "more.txt"
    odd = "a line\u2028separator inside one text"  # splitlines() would cut it in two
    path.write_text(json.dumps({"text": odd}, ensure_ascii=False) + "\nplain text line\n\n", encoding="utf-8")
    assert read_unlabelled(path) == [odd, "plain text line"]


def test_the_sweep_judges_each_combination_on_validation_and_hides_labels_of_the_rest(
    small_model: Built,
) -> None:
    args = ["--work", str(small_model.work), "--temperatures", "1", "2", "--soft-weights", "0.5"]
    result = subprocess.run(
        [sys.executable, "-m", "models.distill_sweep", *args, "--labelled-share", "0.5"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(r["temperature"], r["texts"]) for r in rows] == [
        (1.0, "first 50% labelled"),
        (1.0, "first 50% labelled + rest unlabelled"),
        (2.0, "first 50% labelled"),
        (2.0, "first 50% labelled + rest unlabelled"),
    ]
    assert len({r["teacher_validation_accuracy"] for r in rows}) == 1
    assert all(0 <= r["validation_accuracy"] <= 1 and 0 <= r["agreement_with_teacher"] <= 1 for r in rows)
    assert "| T | soft weight |" in result.stdout


def test_sweep_variants_keep_the_labelled_share_and_hide_the_rest() -> None:
    assert list(variants([0, 1, 0, 1], None)) == [("all labelled", 4, [0, 1, 0, 1])]
    assert list(variants([0, 1, 0, 1], 0.5)) == [
        ("first 50% labelled", 2, [0, 1]),
        ("first 50% labelled + rest unlabelled", 4, [0, 1, NO_LABEL, NO_LABEL]),
    ]


def test_the_ladder_and_the_bench_put_the_student_beside_its_teacher(student: Built) -> None:
    texts = [e.text for e in read_split(student.work / "data", "test")]
    steps = [row["step"] for row in ladder.run_ladder(student.artifact, student.work, texts, 20, 1)]
    table = bench.run_distillation(student.artifact, [], texts)
    teacher, unpruned = (
        str(student.work / "teacher"),
        layout.candidate(layout.student_folder(student.work, 2)),
    )
    # Which of the two the build served was decided by timing them: each has its rows.
    if student.manifest["pruning"]:
        assert steps[3:] == [
            "(d) ONNX Runtime optimized + dynamic int8",
            "(e) (d) distilled to 2 layers, int8",
            "(e') (e) pruned to 6 heads and 384 feed-forward width a layer, int8: the service's model",
            "(f) (e') + LRU cache, 0% hits",
            "(f) (e') + LRU cache, 40% hits",
            "(f) (e') + LRU cache, 80% hits",
        ]
        assert list(table) == [teacher, str(unpruned), str(student.artifact)]
        assert [row["pruned"] for row in table.values()] == [None, None, {"heads": 6, "ffn_width": 384}]
        assert "| 6 / 384 (pruned) |" in bench.distillation_table(table)
        targets = bench.pruning_targets(table)
        assert len(targets) == 1 and targets[0][0].startswith(
            "pruned 2-layer student int8 vs the unpruned one"
        )
    else:
        assert steps[3:] == [
            "(d) ONNX Runtime optimized + dynamic int8",
            "(e) (d) distilled to 2 layers, int8: the service's model",
            "(f) (e) + LRU cache, 0% hits",
            "(f) (e) + LRU cache, 40% hits",
            "(f) (e) + LRU cache, 80% hits",
        ]
        assert list(table) == [teacher, str(student.artifact)]
        assert bench.pruning_targets(table) == []
    assert [row["layers"] for row in table.values()][0] is None
    assert all(row["layers"] == 2 for row in list(table.values())[1:])
    # Lengths past the model's 64-token limit are left out.
    assert set(table[str(student.artifact)]["speedup_p50"]) == {"16", "64"}
    assert bench.distillation_table(table).count("\n") == 1 + len(table)  # head, rule, a row each
