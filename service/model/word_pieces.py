"""BERT's WordPiece pipeline for ASCII texts in a few Python steps, each word's ids cached.

The `tokenizers` library runs normalizer, pre-tokenizer, WordPiece and post-processor and builds
an Encoding (offsets, masks, type ids) for every text: ~23 µs for 16 tokens, and 2-3x that beside
the front on a shared core (docs/service.md). Text is mostly words seen before, so for a plain
ASCII text this does what that pipeline does (clean, lowercase, split on whitespace and
punctuation) with one regular expression and looks each word's ids up in a bounded cache filled
by the library's own WordPiece. Anything else (non-ASCII, a special token written in the text,
a tokenizer that is not BERT's) goes to the library. tests/service/model/test_word_pieces.py
holds the two to the same ids over the test split and random ASCII.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Self

from tokenizers import Tokenizer

# clean_text: ASCII controls are dropped (joining what they split), tab, newline and return are spaces.
CLEAN = str.maketrans(
    {c: None for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]}
    | {0x09: " ", 0x0A: " ", 0x0D: " "}
)
PUNCTUATION = r"!-/:-@\[-`{-~"  # every ASCII character BERT isolates as punctuation
WORDS = {
    False: re.compile(rf"[^\s{PUNCTUATION}]+|[{PUNCTUATION}]"),
    True: re.compile(rf"[a-z0-9]+|[{PUNCTUATION}]"),
}
MAX_CACHED_WORDS = 1 << 16  # ~6 MB; cleared when full, so memory stays bounded on any input


class WordPieces:
    """Token ids of ASCII texts, as the tokenizer they were built from would give them."""

    def __init__(self, tokenizer: Tokenizer, lowercase: bool, cls: int, sep: int, special: list[str]) -> None:
        self._model = tokenizer.model
        self._lowercase = lowercase
        self._words = WORDS[lowercase]
        self._cls, self._sep = cls, sep
        self._special = special  # added tokens, matched in the raw text before normalization
        # Each of BERT's holds "[": one look-up for most texts instead of one per token.
        self._marker = "[" if all("[" in s for s in special) else ""
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def of(cls, path: Path, tokenizer: Tokenizer) -> Self | None:
        """The fast path for a BERT WordPiece tokenizer.json; None for any other pipeline."""
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        normalizer, pre = config.get("normalizer") or {}, config.get("pre_tokenizer") or {}
        model, post = config.get("model") or {}, config.get("post_processor") or {}
        bert = (
            normalizer.get("type") == "BertNormalizer"
            and normalizer.get("clean_text") is True
            and pre.get("type") == "BertPreTokenizer"
            and model.get("type") == "WordPiece"
        )
        ends = _cls_sep(post)
        added = config.get("added_tokens", [])
        # The library finds an added token in the raw text, before anything else: this path leaves
        # such a text to it, which it can tell only for tokens matched as they are written.
        plain = all(
            not any(t.get(k) for k in ("normalized", "lstrip", "rstrip", "single_word")) for t in added
        )
        if not bert or ends is None or not plain:
            return None
        return cls(tokenizer, bool(normalizer.get("lowercase")), *ends, [t["content"] for t in added])

    def ids(self, text: str, max_length: int) -> tuple[list[int], bool] | None:
        """The ids (special tokens included, cut to `max_length`) and whether they were cut; None
        for a text this path does not take."""
        if not text.isascii() or (self._marker in text and any(s in text for s in self._special)):
            return None
        clean = text.translate(CLEAN)
        words = self._words.findall(clean.lower() if self._lowercase else clean)
        cache, ids = self._cache, [self._cls]
        for word in words:
            pieces = cache.get(word)
            if pieces is None:
                pieces = [t.id for t in self._model.tokenize(word)]
                if len(cache) >= MAX_CACHED_WORDS:
                    cache.clear()
                cache[word] = pieces
            ids += pieces
        cut = len(ids) > max_length - 1
        if cut:
            del ids[max_length - 1 :]
        ids.append(self._sep)
        return ids, cut


def _cls_sep(post: dict[str, Any]) -> tuple[int, int] | None:
    """The [CLS] and [SEP] ids of a post-processor that wraps one text as [CLS] text [SEP]."""
    if post.get("type") == "BertProcessing":
        return post["cls"][1], post["sep"][1]
    if post.get("type") != "TemplateProcessing":
        return None
    single = post.get("single", [])
    shape = [next(iter(part)) for part in single]
    if shape != ["SpecialToken", "Sequence", "SpecialToken"]:
        return None
    first, last = (post["special_tokens"][single[i]["SpecialToken"]["id"]]["ids"] for i in (0, 2))
    return (first[0], last[0]) if len(first) == len(last) == 1 else None
