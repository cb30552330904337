"""The id every request carries in its log lines and its response: the caller's, or a new one."""

from __future__ import annotations

import random
import re

# A caller's id is kept only if it cannot forge log lines or bloat them.
VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def request_id(given: bytes | None) -> str:
    """The caller's X-Request-ID if it is a valid one, else 32 random hex digits (unique, not
    secret: Python's generator, reseeded in each forked process, at a fifth of os.urandom's cost)."""
    if given is not None and VALID_ID.fullmatch(given):
        return given.decode()
    return f"{random.getrandbits(128):032x}"
