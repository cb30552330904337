"""The wire codec refuses replies and hellos no worker computing this model sends (in process, no worker)."""

from __future__ import annotations

import math
import struct

import pytest

from service.prediction import Prediction, Timing
from service.protocol import HELLO_HEADER, REPLY_HEADER, BadReply, Codec, pack_hello, take_hello

LABELS = ("negative", "neutral", "positive")
CODEC = Codec(LABELS)
GOOD = Prediction.from_logits(LABELS, (0.5, -1.0, 2.0), tokens=7, truncated=False)


def reply(
    *,
    labels: int = 3,
    scores: tuple[float, ...] | None = None,
    logits: tuple[float, ...] | None = None,
    times: tuple[float, float, float] = (0.001, 0.002, 0.004),
) -> bytes:
    """A reply as a worker would pack it, with any field set to what a broken worker might send."""
    scores = GOOD.scores if scores is None else scores
    logits = GOOD.logits if logits is None else logits
    body = struct.pack(f"!?H?ddd{len(scores)}d{len(logits)}d", True, 7, False, *times, *scores, *logits)
    return REPLY_HEADER.pack(42, labels) + body


def test_a_computed_reply_comes_back_as_it_was_sent() -> None:
    packed = CODEC.pack_reply(42, GOOD, Timing(0.001, 0.002), busy=0.004)
    assert packed == reply()
    unpacked = CODEC.unpack_reply(packed)
    assert unpacked.job_id == 42 and unpacked.result is not None
    assert unpacked.result[0] == GOOD


@pytest.mark.parametrize(
    "bad",
    [
        {"scores": (math.nan, 0.5, 0.5)},
        {"scores": (-0.1, 0.6, 0.5)},  # sums to 1, but no probability is negative
        {"scores": (0.2, 0.2, 0.2)},  # probabilities, not summing to 1
        {"logits": (1.0, math.inf, 0.0)},
        {"logits": (1.0, math.nan, 0.0)},
        {"times": (-0.001, 0.002, 0.004)},
        {"times": (0.001, math.nan, 0.004)},
        {"times": (0.001, 0.002, math.inf)},
    ],
    ids=lambda bad: f"{next(iter(bad))}={next(iter(bad.values()))}",
)
def test_a_reply_no_model_computes_is_refused(bad: dict[str, tuple[float, ...]]) -> None:
    with pytest.raises(BadReply):
        CODEC.unpack_reply(reply(**bad))  # type: ignore[arg-type]


def test_a_reply_for_another_label_count_is_refused_before_it_is_all_there() -> None:
    short = reply(labels=2, scores=(0.5, 0.5), logits=(0.0, 0.0))
    with pytest.raises(BadReply):
        CODEC.check_start(short[: REPLY_HEADER.size])
    CODEC.check_start(reply()[: REPLY_HEADER.size])  # ours: nothing to say yet


THRESHOLDS = (0.5, 0.9, 0.3)
MULTI = Codec(LABELS, THRESHOLDS)


def test_a_multi_label_reply_carries_a_probability_per_label_and_the_labels_at_their_thresholds() -> None:
    computed = Prediction.from_logits(
        LABELS, (0.5, 1.0, -3.0), tokens=7, truncated=False, thresholds=THRESHOLDS
    )
    assert computed.scores == pytest.approx([1 / (1 + math.exp(-x)) for x in (0.5, 1.0, -3.0)])
    assert (computed.label, computed.selected) == ("neutral", ("negative",))  # neutral: 0.73 < 0.9
    unpacked = MULTI.unpack_reply(MULTI.pack_reply(42, computed, Timing(0.001, 0.002), busy=0.004))
    assert unpacked.result is not None and unpacked.result[0] == computed
    # None selected is an answer too: no label, while `label` stays the top one.
    shy = Prediction.from_logits(LABELS, (-2.0, -1.0, -4.0), tokens=7, truncated=False, thresholds=THRESHOLDS)
    assert (shy.label, shy.selected) == ("neutral", ())


@pytest.mark.parametrize(
    "scores",
    [(0.5, math.nan, 0.5), (0.5, 0.5, math.nan), (0.5, 1.5, 0.2), (-0.1, 0.5, 0.5), (0.5, math.inf, 0.5)],
)
def test_a_multi_label_reply_with_a_score_that_is_no_probability_is_refused(
    scores: tuple[float, ...],
) -> None:
    with pytest.raises(BadReply):
        MULTI.unpack_reply(reply(scores=scores))


def test_a_hello_names_the_version_and_the_graph_and_is_taken_only_when_whole() -> None:
    graph = {"served": "unfused", "rule": "timed", "p50_ms": {"fused": {"16": 0.3}}, "rounds": 30}
    sent = pack_hello("0123456789ab", graph)
    buffer = bytearray(sent[:-1])
    assert take_hello(buffer) is None and len(buffer) == len(sent) - 1  # nothing taken yet
    buffer += sent[-1:] + b"reply bytes"
    hello = take_hello(buffer)
    assert hello is not None and (hello.version, hello.served, hello.graph) == (
        "0123456789ab",
        "unfused",
        graph,
    )
    assert buffer == b"reply bytes"  # what follows stays for the reply reader


@pytest.mark.parametrize(
    "body",
    [
        b"0123456789ab",
        b"[]",
        b'{"version": "v"}',
        b'{"version": 3, "graph": {"served": "fused"}}',
        b'{"version": "v", "graph": {"rule": "timed"}}',
        b'{"version": "v", "graph": {"served": 1}}',
    ],
)
def test_a_hello_that_is_not_one_is_refused(body: bytes) -> None:
    with pytest.raises(BadReply, match="hello"):
        take_hello(bytearray(HELLO_HEADER.pack(len(body)) + body))
