"""The tokens file's format, read in process."""

from __future__ import annotations

from pathlib import Path

from service.tokens import read_tokens_file

TOKEN = "tok-0123456789abcdef"  # 20 characters: fit


def test_a_tokens_file_skips_comments_and_blank_lines_and_a_bom(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"\ufeff{TOKEN}\n# rotated 2024-05\n\n   \n  # indented too\r\n{TOKEN}-two\n")
    assert read_tokens_file(tokens) == ([TOKEN, f"{TOKEN}-two"], [])
