"""The wire format between an HTTP front and its model workers: fixed binary fields, no pickle.

A front sends a worker one job at a time over a Unix stream socket and sends the next only
when the reply came back (pull by completion, as mosec's workers do), so a worker never holds a
queue of its own. Both sides build their structs here, from the artifact's labels.

    hello: !H version length, then the artifact version (UTF-8): a worker's first message, once
           its model is warm; the front refuses a worker whose version is not its own
    job:   !I job id, !I text length in bytes, then the text (UTF-8)
    reply: !I job id, !? ok, !H tokens, !? truncated, !d tokenize s, !d inference s, !d busy s
           (receive to send, the worker's own clock), then one !d probability and one !d logit per
           label: the worker takes the softmax once, the front copies its result
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from service.prediction import Prediction, Timing

JOB_HEADER = struct.Struct("!II")
HELLO_HEADER = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class Reply:
    """One decoded reply: the worker's result for a job, or None where it failed the job."""

    job_id: int
    busy: float
    result: tuple[Prediction, Timing] | None


class Codec:
    """Packs and unpacks replies for a model with these labels (every reply has the same size)."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        n = len(self.labels)
        self._reply = struct.Struct(f"!I?H?ddd{n}d{n}d")
        self._failed = (False, 0, False, 0.0, 0.0, 0.0, *(0.0,) * (2 * n))

    @property
    def reply_size(self) -> int:
        """Bytes in every reply."""
        return self._reply.size

    def pack_reply(self, job_id: int, prediction: Prediction, timing: Timing, busy: float) -> bytes:
        """The bytes a worker sends for a job it computed."""
        return self._reply.pack(
            job_id,
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
        """A reply from exactly `reply_size` bytes; its timing's queue is left for the front."""
        job_id, ok, tokens, truncated, tokenize, inference, busy, *numbers = self._reply.unpack(data)
        if not ok:
            return Reply(job_id, busy, None)
        n = len(self.labels)
        prediction = Prediction.from_scores(
            self.labels, tuple(numbers[:n]), tuple(numbers[n:]), tokens, truncated
        )
        return Reply(job_id, busy, (prediction, Timing(tokenize, inference)))


def pack_hello(version: str) -> bytes:
    """A worker's first message: the version of the model it loaded and warmed up."""
    data = version.encode()
    return HELLO_HEADER.pack(len(data)) + data


def take_hello(buffer: bytearray) -> str | None:
    """The version in a hello at the start of `buffer`, removed from it; None until it is all there."""
    if len(buffer) < HELLO_HEADER.size:
        return None
    (length,) = HELLO_HEADER.unpack_from(buffer)
    end = HELLO_HEADER.size + length
    if len(buffer) < end:
        return None
    version = buffer[HELLO_HEADER.size : end].decode(errors="replace")
    del buffer[:end]
    return version


def pack_job(job_id: int, text: str) -> bytes:
    """The bytes a front sends for one text."""
    data = text.encode("utf-8", "surrogatepass")
    return JOB_HEADER.pack(job_id, len(data)) + data


def receive_exactly(sock: socket.socket, size: int) -> bytes | None:
    """Block until `size` bytes arrived; None if the peer closed first (the front has gone)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return bytes(buffer)


def receive_job(sock: socket.socket) -> tuple[int, str] | None:
    """The next job (id, text), blocking; None when the front closed the socket."""
    header = receive_exactly(sock, JOB_HEADER.size)
    if header is None:
        return None
    job_id, length = JOB_HEADER.unpack(header)
    data = receive_exactly(sock, length) if length else b""
    if data is None:
        return None
    return job_id, data.decode("utf-8", "surrogatepass")
