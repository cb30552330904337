"""The wire format between an HTTP front and its model workers: fixed binary fields, no pickle.

A front sends a worker one job at a time over a Unix stream socket and sends the next only
when the reply came back (pull by completion, as mosec's workers do), so a worker never holds a
queue of its own. Both sides build their structs here, from the artifact's label count.

    hello: !H version length, then the artifact version (UTF-8): a worker's first message, once
           its model is warm; the front refuses a worker whose version is not its own
    job:   !I job id, !I text length in bytes, then the text (UTF-8)
    reply: !I job id, !B status, !H tokens, !B truncated, !d tokenize s, !d inference s,
           !d busy s (receive to send, the worker's own clock), then one !d logit per label (the
           front takes the softmax: the raw scores are asked for too, and the logits give both)
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from enum import IntEnum

JOB_HEADER = struct.Struct("!II")
HELLO_HEADER = struct.Struct("!H")


class Status(IntEnum):
    """What a reply says."""

    OK = 0
    FAILED = 1


@dataclass(frozen=True, slots=True)
class Reply:
    """One decoded reply."""

    job_id: int
    status: Status
    tokens: int
    truncated: bool
    tokenize: float
    inference: float
    busy: float
    logits: tuple[float, ...]


class Codec:
    """Packs and unpacks replies for a model with `labels` outputs (every reply has the same size)."""

    def __init__(self, labels: int) -> None:
        self._reply = struct.Struct(f"!IBHBddd{labels}d")
        self.labels = labels

    @property
    def reply_size(self) -> int:
        """Bytes in every reply."""
        return self._reply.size

    def pack_reply(self, reply: Reply) -> bytes:
        """The bytes a worker sends."""
        return self._reply.pack(
            reply.job_id,
            reply.status,
            reply.tokens,
            reply.truncated,
            reply.tokenize,
            reply.inference,
            reply.busy,
            *reply.logits,
        )

    def unpack_reply(self, data: bytes | memoryview) -> Reply:
        """A reply from exactly `reply_size` bytes."""
        job_id, status, tokens, truncated, tokenize, inference, busy, *logits = self._reply.unpack(data)
        return Reply(
            job_id, Status(status), tokens, bool(truncated), tokenize, inference, busy, tuple(logits)
        )

    def failed(self, job_id: int) -> bytes:
        """The reply for a job the worker could not compute."""
        return self.pack_reply(Reply(job_id, Status.FAILED, 0, False, 0.0, 0.0, 0.0, (0.0,) * self.labels))


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
