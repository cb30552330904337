"""Fast tokenizer wrapper: one text in, unpadded ids out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from service.model.word_pieces import WordPieces


@dataclass(frozen=True, slots=True)
class Encoding:
    """Token ids of one text, shape (1, n), and whether truncation cut it."""

    input_ids: npt.NDArray[np.int64]
    truncated: bool

    @property
    def n_tokens(self) -> int:
        """Number of tokens fed to the model, special tokens included."""
        return int(self.input_ids.shape[1])


class TextTokenizer:
    """Encodes single texts without padding, truncating at the model's maximum length."""

    def __init__(self, path: Path, max_length: int) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))
        # The saved tokenizer.json may carry batch padding/truncation settings from training;
        # batch size 1 never needs padding, and truncation must match the manifest.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length)
        self.max_length = max_length
        self._word_pieces = WordPieces.of(path, self._tokenizer)

    def encode(self, text: str) -> Encoding:
        """Tokenize one text."""
        fast = self._word_pieces.ids(text, self.max_length) if self._word_pieces is not None else None
        if fast is not None:
            ids, truncated = fast
        else:
            enc = self._tokenizer.encode(text)
            ids, truncated = enc.ids, bool(enc.overflowing)
        return Encoding(input_ids=np.array(ids, dtype=np.int64).reshape(1, -1), truncated=truncated)
