"""Optional bearer-token auth: the accepted tokens (fixed, and a file re-read when it changes) and
the check of a request's Authorization header, done by the edge before anything reads the body."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from service.front.edge.route_table import Access
from service.tokens import TOKENS_FILE_FORMAT, read_tokens_file

CHALLENGE = [(b"www-authenticate", b'Bearer realm="textclf"')]


def protected_access(open_health: bool, open_metrics: bool) -> frozenset[Access]:
    """Which routes need a token: the API always; probes and metrics unless left open."""
    return frozenset(
        {Access.API}
        | (set() if open_health else {Access.PROBE})
        | (set() if open_metrics else {Access.METRICS})
    )


log = logging.getLogger(__name__)


class Tokens:
    """The accepted tokens' SHA-256 digests: the fixed ones, and the tokens file's, read again when
    it changes.

    A mounted Kubernetes Secret is updated in place (a symlink swap): its new tokens must work,
    and revoked ones stop working, without a restart. The file's identity (inode, mtime, size)
    is checked at most every `check_every` seconds, so requests pay one stat a second, not each.
    Auth fails closed: a file that is empty, missing or unreadable contributes no token, so an
    empty Secret that a sidecar fills later refuses every request until it holds one. A line that
    is no fit token (service.tokens.TOKENS_FILE_FORMAT), refused at start-up, is skipped at a
    re-read and logged without its value: the file's other tokens keep working.
    """

    def __init__(self, fixed: Sequence[str], file: Path | None, check_every: float = 1.0) -> None:
        self._fixed = self._digests(fixed)
        self._file = file
        self._check_every = check_every
        self._next_check = time.monotonic() + check_every
        self._identity = self._stat()
        self.digests = self._fixed + self._read_file()
        if not self.digests:
            log.warning("no bearer token configured yet: every protected request is refused (401)")

    @staticmethod
    def _digests(tokens: Iterable[str]) -> list[bytes]:
        return [hashlib.sha256(t.encode()).digest() for t in tokens]

    def _stat(self) -> tuple[int, int, int] | None:
        if self._file is None:
            return None
        try:
            st = os.stat(self._file)  # follows the Secret's symlinks to the current file
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _read_file(self) -> list[bytes]:
        if self._file is None:
            return []
        try:
            tokens, refused = read_tokens_file(self._file)
        except (OSError, UnicodeDecodeError) as err:
            log.warning(
                "tokens file %s could not be read (%s): none of its tokens is accepted", self._file, err
            )
            return []
        for problem in refused:
            log.warning("tokens file %s: that line is not accepted (%s)", problem, TOKENS_FILE_FORMAT)
        return self._digests(tokens)

    def current(self) -> list[bytes]:
        """The digests to check a request against, re-read first if the file changed."""
        if self._file is None or time.monotonic() < self._next_check:
            return self.digests
        self._next_check = time.monotonic() + self._check_every
        identity = self._stat()
        if identity == self._identity:
            return self.digests
        self._identity = identity
        self.digests = self._fixed + self._read_file()
        log.info("tokens file %s changed: %d tokens now accepted", self._file, len(self.digests))
        return self.digests


class BearerAuth:
    """Accepts `Authorization: Bearer <token>` carrying one of the configured tokens.

    Tokens are compared as SHA-256 digests with hmac.compare_digest, against every configured
    token without stopping early, so the time taken says nothing about how close a guess was or
    which token matched. The answer is the same whether the header is missing, malformed or wrong.
    """

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def accepts(self, authorization: bytes) -> bool:
        """Whether an Authorization header's value carries an accepted token."""
        scheme, _, token = authorization.partition(b" ")
        presented = hashlib.sha256(token.strip()).digest()
        matched = False
        for digest in self.tokens.current():
            matched |= hmac.compare_digest(presented, digest)
        return matched and scheme.lower() == b"bearer"
