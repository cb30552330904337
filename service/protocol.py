"""The wire format between an HTTP front and its model workers: fixed binary fields, no pickle.

A front sends a worker one job at a time over a Unix stream socket and sends the next only
when the reply came back (pull by completion, as mosec's workers do), so a worker never holds a
queue of its own. Both sides build their structs here, from the artifact's labels.

    hello: !H length, then a JSON object {"version": the artifact's, "graph": which of its graphs
           the worker serves and why (service.model.graphs)}: a worker's first message, once its
           model is warm; the front refuses a worker whose version is not its own
    job:   !I job id, !I text length in bytes, then the text (UTF-8)
    reply: !I job id, !H labels, !? ok, !H tokens, !? truncated, !d tokenize s, !d inference s,
           !d busy s (receive to send, the worker's own clock), then one !d probability and one !d
           logit per label: the worker takes the softmax (a multi-label model: a sigmoid per label)
           once, the front checks and copies its result

The front trusts no reply: one with another label count (read as soon as its first 6 bytes are in,
so a short one does not wait for bytes that never come), scores that are not probabilities
(summing to 1, for a single-label model), a logit or time that is not a finite number, is refused
(`BadReply`) and its worker replaced, like one that answers another job.
"""

from __future__ import annotations

import json
import math
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.prediction import Prediction, Timing

JOB_HEADER = struct.Struct("!II")
HELLO_HEADER = struct.Struct("!H")
REPLY_HEADER = struct.Struct("!IH")  # the start of every reply: job id, label count
# How far a reply's probabilities may sum from 1: a worker's float64 softmax over a few labels is
# within a few ulp (1e-16) of it, so this refuses only what no softmax computed.
SCORE_SUM_TOLERANCE = 1e-9
READ_BYTES = 1 << 16  # a worker's read: a whole job, mostly (a text is at most a few tens of KB)


class BadReply(ValueError):
    """A reply no worker computing this model sends: its worker is broken or out of step."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One decoded reply: the worker's result for a job, or None where it failed the job."""

    job_id: int
    busy: float
    result: tuple[Prediction, Timing] | None


class Codec:
    """Packs and unpacks replies for a model with these labels (every reply has the same size)."""

    def __init__(self, labels: Sequence[str], thresholds: Sequence[float] | None = None) -> None:
        self.labels = tuple(labels)
        self.thresholds = None if thresholds is None else tuple(thresholds)  # multi-label models only
        n = len(self.labels)
        self._reply = struct.Struct(REPLY_HEADER.format + f"?H?ddd{n}d{n}d")
        self._failed = (n, False, 0, False, 0.0, 0.0, 0.0, *(0.0,) * (2 * n))

    @property
    def reply_size(self) -> int:
        """Bytes in every reply."""
        return self._reply.size

    def pack_reply(self, job_id: int, prediction: Prediction, timing: Timing, busy: float) -> bytes:
        """The bytes a worker sends for a job it computed."""
        return self._reply.pack(
            job_id,
            len(self.labels),
            True,
            prediction.tokens,
            prediction.truncated,
            timing.tokenize,
            timing.inference,
            busy,
            *prediction.scores,
            *prediction.logits,
        )

    def failed(self, job_id: int) -> bytes:
        """The reply for a job the worker could not compute."""
        return self._reply.pack(job_id, *self._failed)

    def unpack_reply(self, data: bytes | memoryview) -> Reply:
        """A reply from exactly `reply_size` bytes; its timing's queue is left for the front.
        BadReply if no worker computing this model sends it (the checks: 0.5 µs a reply)."""
        job_id, count, ok, tokens, truncated, tokenize, inference, busy, *numbers = self._reply.unpack(data)
        self._check_count(count)
        n = len(self.labels)
        if not 0.0 <= busy < math.inf:
            raise BadReply(f"a busy time of {busy} s")
        if not ok:
            return Reply(job_id, busy, None)
        scores, logits = tuple(numbers[:n]), tuple(numbers[n:])
        # Cheap enough for every reply: NaN fails every comparison (a sum holds any NaN among its
        # terms), and a sum is finite only if every term is (float32 logits are too small to add
        # up to an overflow).
        total = sum(scores)
        if not (
            (abs(total - 1.0) <= SCORE_SUM_TOLERANCE if self.thresholds is None else math.isfinite(total))
            and min(scores) >= 0.0
            and max(scores) <= 1.0
            and math.isfinite(sum(logits))
            and 0.0 <= tokenize < math.inf
            and 0.0 <= inference < math.inf
        ):
            raise BadReply(f"scores {scores}, logits {logits}, times {tokenize} s and {inference} s")
        prediction = Prediction.from_scores(self.labels, scores, logits, tokens, truncated, self.thresholds)
        return Reply(job_id, busy, (prediction, Timing(tokenize, inference)))

    def check_start(self, buffer: bytes | bytearray) -> None:
        """BadReply if the reply starting `buffer` (not all there yet) is for another label count:
        a shorter reply than ours would otherwise wait for bytes that never come."""
        if len(buffer) >= REPLY_HEADER.size:
            self._check_count(REPLY_HEADER.unpack_from(buffer)[1])

    def _check_count(self, count: int) -> None:
        if count != len(self.labels):
            raise BadReply(f"a reply for {count} labels, not {len(self.labels)}")


@dataclass(frozen=True, slots=True)
class Hello:
    """What a worker loaded: the model's version, and the graph it serves (with how it chose it)."""

    version: str
    graph: dict[str, Any]

    @property
    def served(self) -> str:
        """The name of the graph it serves."""
        return str(self.graph["served"])


def pack_hello(version: str, graph: dict[str, Any]) -> bytes:
    """A worker's first message, once its model is loaded and warm."""
    data = json.dumps({"version": version, "graph": graph}).encode()
    return HELLO_HEADER.pack(len(data)) + data


def take_hello(buffer: bytearray) -> Hello | None:
    """The hello at the start of `buffer`, removed from it; None until it is all there; BadReply if
    it is not one."""
    if len(buffer) < HELLO_HEADER.size:
        return None
    (length,) = HELLO_HEADER.unpack_from(buffer)
    end = HELLO_HEADER.size + length
    if len(buffer) < end:
        return None
    data = bytes(buffer[HELLO_HEADER.size : end])
    del buffer[:end]
    try:
        hello = json.loads(data)
        version, graph = hello["version"], hello["graph"]
        if not (isinstance(version, str) and isinstance(graph, dict) and isinstance(graph["served"], str)):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BadReply(f"a hello that is not one: {data[:200]!r}") from None
    return Hello(version, graph)


def pack_job(job_id: int, text: str) -> bytes:
    """The bytes a front sends for one text."""
    data = text.encode("utf-8", "surrogatepass")
    return JOB_HEADER.pack(job_id, len(data)) + data


class JobReader:
    """A model worker's jobs, read from its socket in as few calls as they arrive in: one per job
    when the job came whole (the front writes each in one call), rather than one for its header
    and one for its text."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def next(self) -> tuple[int, str] | None:
        """The next job (id, text), blocking; None when the front closed the socket."""
        buffer, need = self._buffer, JOB_HEADER.size
        while True:
            if len(buffer) >= JOB_HEADER.size:
                job_id, length = JOB_HEADER.unpack_from(buffer)
                need = JOB_HEADER.size + length
                if len(buffer) >= need:
                    text = buffer[JOB_HEADER.size : need].decode("utf-8", "surrogatepass")
                    del buffer[:need]
                    return job_id, text
            data = self._sock.recv(max(READ_BYTES, need - len(buffer)))
            if not data:
                return None
            buffer += data
