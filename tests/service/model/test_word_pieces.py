"""The ASCII fast path gives the ids the tokenizers library gives, text for text: over the model's
whole test split and random ASCII (every character, long words, special tokens, cuts)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from service.model.tokenizer import TextTokenizer
from service.model.word_pieces import WordPieces
from tests.conftest import Built


def reference(path: Path, max_length: int) -> Tokenizer:
    """The library's own pipeline, as TextTokenizer configures it."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def same_ids(path: Path, texts: list[str], max_length: int) -> None:
    """Every text that the fast path takes gets the library's ids and cut; it takes every ASCII one."""
    library, ours = reference(path, max_length), TextTokenizer(path, max_length)
    assert ours._word_pieces is not None  # the fast path is on for BERT's tokenizer
    for text in texts:
        if text.isascii() and not any(s in text for s in ("[CLS]", "[SEP]", "[UNK]", "[MASK]", "[PAD]")):
            assert ours._word_pieces.ids(text, max_length) is not None, repr(text)  # the path is taken
        expected = library.encode(text)
        got = ours.encode(text)
        assert got.input_ids[0].tolist() == expected.ids, repr(text)
        assert got.truncated == bool(expected.overflowing), repr(text)


def test_the_test_split_tokenizes_the_same(small_model: Built) -> None:
    lines = (small_model.work / "data" / "test.jsonl").read_text().split("\n")
    texts = [json.loads(line)["text"] for line in lines if line]
    assert sum(t.isascii() for t in texts) > len(texts) / 2  # the path is exercised
    same_ids(small_model.artifact / "tokenizer.json", texts, 64)


@pytest.mark.parametrize("seed", range(4))
def test_random_ascii_tokenizes_the_same(small_model: Built, seed: int) -> None:
    rng = random.Random(seed)
    pieces = [chr(c) for c in range(128)] + ["[CLS]", "[SEP]", "[UNK]", "[MASK]", "[PAD]", "[cls]", " "] * 3
    words = ["the", "unbelievable", "Game", "don't", "e-mail", "3.14", "x" * 101, "ab" * 60, "WiFi"]
    texts = ["".join(rng.choice(pieces + words) for _ in range(rng.randrange(0, 80))) for _ in range(3000)]
    same_ids(small_model.artifact / "tokenizer.json", texts, rng.choice([8, 16, 64, 128]))


def test_non_ascii_and_other_tokenizers_go_to_the_library(small_model: Built, tmp_path: Path) -> None:
    path = small_model.artifact / "tokenizer.json"
    fast = WordPieces.of(path, Tokenizer.from_file(str(path)))
    assert fast is not None
    assert fast.ids("café au lait", 64) is None and fast.ids("a [SEP] b", 64) is None
    assert fast.ids("plain text", 64) is not None
    config = json.loads(path.read_text())
    other = tmp_path / "tokenizer.json"
    for change in (
        {"pre_tokenizer": {"type": "Whitespace"}},
        {"added_tokens": [config["added_tokens"][0] | {"normalized": True}]},
    ):
        other.write_text(json.dumps(config | change))
        assert WordPieces.of(other, Tokenizer.from_file(str(other))) is None
