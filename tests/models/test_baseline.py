"""The TF-IDF baseline every model has to beat: fitted once per set of splits."""

from __future__ import annotations

from pathlib import Path

from models import baseline
from models.data import SPLITS


def test_the_baseline_is_fitted_once_per_set_of_splits(tmp_path: Path) -> None:
    rows = [f'{{"text": "good day {i}", "label": "positive"}}' for i in range(12)]
    rows += [f'{{"text": "awful night {i}", "label": "negative"}}' for i in range(12)]
    for split in SPLITS:
        (tmp_path / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    first = baseline.measured(tmp_path)
    assert (tmp_path / baseline.CACHE).is_file()
    # A result read back, not refitted: an edited cache shows through while the splits are the same.
    cached = (tmp_path / baseline.CACHE).read_text().replace(f'"C": {first["C"]}', '"C": -1.0')
    (tmp_path / baseline.CACHE).write_text(cached)
    assert baseline.measured(tmp_path)["C"] == -1.0
    # New splits: fitted again.
    (tmp_path / "test.jsonl").write_text("\n".join(rows[::-1]) + "\n")
    assert baseline.measured(tmp_path)["C"] == first["C"]
