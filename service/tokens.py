"""Bearer tokens: what a token must be, and the tokens file's format (read by the settings at
start-up and by auth at every change)."""

from __future__ import annotations

from pathlib import Path

MIN_TOKEN_CHARS = 16
TOKENS_FILE_FORMAT = (
    "UTF-8, one token per line; blank lines and lines starting with # are skipped; "
    f"a token has at least {MIN_TOKEN_CHARS} characters and no whitespace"
)


def token_problem(token: str) -> str | None:
    """Why `token` cannot be a bearer token (without quoting it), or None if it can."""
    if any(c.isspace() for c in token):
        return "a token contains whitespace"
    if len(token) < MIN_TOKEN_CHARS:
        return f"a token is shorter than {MIN_TOKEN_CHARS} characters"
    return None


def read_tokens_file(path: Path) -> tuple[list[str], list[str]]:
    """A tokens file's tokens (TOKENS_FILE_FORMAT; a UTF-8 BOM is ignored), and why each other line
    was refused, naming the file and the line, never its value.

    A comment or a separator such as `---` must not become a bearer token: a line is a comment
    only when it starts with #; anything else is a token, or refused. Raises OSError, or
    UnicodeDecodeError for a file that is not UTF-8.
    """
    tokens, refused = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        problem = token_problem(token)
        if problem is None:
            tokens.append(token)
        else:
            refused.append(f"{path} line {number}: {problem}")
    return tokens, refused
