"""The one "classify these texts" use case every protocol adapter calls (/v1, /predict, the Open
Inference Protocol): the batch bound, normalization, the truncation refusal, then the cache, the
single-flight and the model through service.front.core.cached_dispatch."""

from __future__ import annotations

import re
from collections.abc import Sequence

from service.front.core.cached_dispatch import CachedDispatch, Outcome
from service.front.core.errors import ErrorType, ServiceError

# A text must hold one character that is not whitespace, a control or an invisible format
# character (zero-width space, BOM, direction marks): otherwise the model has nothing to read.
# One pattern for both the check and the OpenAPI schema, so the two cannot disagree.
VISIBLE = re.compile(
    "[^\\s\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u061c\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff]"
)


def normalize(text: str, max_chars: int, where: str = "text") -> str:
    """The one normalization applied before both the cache and the model: strip outer whitespace."""
    if len(text) > max_chars:
        raise ServiceError(
            ErrorType.TEXT_TOO_LONG, f"{where} has {len(text)} characters; the limit is {max_chars}"
        )
    stripped = text.strip()
    # search() stops at the first visible character, so real text costs one step.
    if VISIBLE.search(stripped) is None:
        raise ServiceError(ErrorType.EMPTY_TEXT, f"{where} has no visible characters")
    return stripped


class Classify:
    """Texts in, outcomes out, under the service's limits; errors are ServiceErrors naming the text."""

    def __init__(self, dispatch: CachedDispatch, max_chars: int, max_batch: int, max_tokens: int) -> None:
        self.dispatch = dispatch
        self.max_chars = max_chars
        self.max_batch = max_batch
        self.max_tokens = max_tokens  # the model's sequence length, named in a truncation refusal

    async def one(self, text: str) -> Outcome:
        """Classify one text (its model may cut it: the outcome says so)."""
        return await self.dispatch.classify(normalize(text, self.max_chars))

    async def many(
        self,
        texts: Sequence[str],
        field: str,
        where: Sequence[str] | None = None,
        refuse_cut: str | None = None,
    ) -> list[Outcome]:
        """Classify several texts: errors name each `field[i]` (or as `where` says); with
        `refuse_cut` (how to allow it), 413 for a text the model would have to cut."""
        self.check_count(len(texts), field)
        where = where or [f"{field}[{i}]" for i in range(len(texts))]
        normalized = [normalize(t, self.max_chars, w) for t, w in zip(texts, where, strict=True)]
        outcomes = await self.dispatch.classify_many(normalized)
        if refuse_cut is not None:
            for outcome, w in zip(outcomes, where, strict=True):
                if outcome.prediction.truncated:
                    message = f"{w} is longer than the model's {self.max_tokens} tokens"
                    raise ServiceError(
                        ErrorType.TOO_MANY_TOKENS, f"{message}; {refuse_cut} to classify its start"
                    )
        return outcomes

    def check_count(self, count: int, field: str) -> None:
        """400s for no texts or more than the batch bound (before any is decoded, where possible)."""
        if not count:
            raise ServiceError(ErrorType.EMPTY_TEXT, f"{field} is empty")
        if count > self.max_batch:
            raise ServiceError(ErrorType.TOO_MANY_TEXTS, f"{count} {field}; the limit is {self.max_batch}")
