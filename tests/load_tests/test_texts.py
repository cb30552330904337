from __future__ import annotations

import json
from pathlib import Path

import pytest

from load_tests.texts import held_out_texts, mix

TEXTS = [f"text number {i}" for i in range(100)]


@pytest.mark.parametrize("ratio", [0.0, 0.4, 0.8, 1.0])
def test_mix_has_the_requested_share_of_repeats_and_every_other_text_is_new(ratio: float) -> None:
    mixed = mix(TEXTS, 1000, ratio, hot_size=10)
    assert len(mixed.sequence) == 1000
    assert mixed.hit_ratio == ratio
    fresh = [t for t in mixed.sequence if t not in mixed.hot]
    assert len(fresh) == len(set(fresh))  # beyond the split's 90 texts, round markers keep them new
    # Any window of the run has about the requested ratio, not all repeats up front.
    first = mix(TEXTS, 100, ratio, hot_size=10)
    assert abs(first.hit_ratio - ratio) <= 0.01


def test_mix_is_reproducible_and_rejects_bad_ratios() -> None:
    assert mix(TEXTS, 50, 0.5, seed=3) == mix(TEXTS, 50, 0.5, seed=3)
    with pytest.raises(ValueError, match="hit ratio"):
        mix(TEXTS, 10, 1.5)
    with pytest.raises(ValueError, match="hot set"):
        mix(TEXTS[:5], 10, 0.5, hot_size=10)


def test_held_out_texts_keeps_line_separators_inside_texts(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    rows = [
        {"text": "one\u2028two", "label": "a"},
        {"text": "  ", "label": "b"},
        {"text": "three", "label": "c"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert held_out_texts(path) == ["one\u2028two", "three"]
    with pytest.raises(SystemExit, match="make model"):
        held_out_texts(tmp_path / "missing.jsonl")
