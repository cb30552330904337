"""Fast tokenizer wrapper: one text in, unpadded ids out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer


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

    def encode(self, text: str) -> Encoding:
        """Tokenize one text."""
        enc = self._tokenizer.encode(text)
        ids = np.asarray(enc.ids, dtype=np.int64).reshape(1, -1)
        return Encoding(input_ids=ids, truncated=bool(enc.overflowing))
