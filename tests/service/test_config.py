from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from service.config import (
    OWN_FIELDS,
    ModelSettings,
    Settings,
    TracingSettings,
    describe,
    load_settings,
)
from service.tokens import read_tokens_file
from service.worker_settings import WorkerSettings


def test_defaults_are_sane() -> None:
    s = Settings()
    assert s.host == "127.0.0.1" and s.port == 8000 and s.workers == 0
    assert s.cache_entries > 0 and s.cache_max_bytes > 0


def test_environment_with_prefix_is_read_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTCLF_PORT", "9123")
    monkeypatch.setenv("TEXTCLF_CACHE_ENTRIES", "0")
    monkeypatch.setenv("TEXTCLF_SERVING", "colocated")
    s = load_settings()
    assert (s.port, s.cache_entries, s.serving) == (9123, 0, "colocated")


def test_process_counts_follow_the_serving_design(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = Settings(workers=4, fronts=2)
    assert (pool.model_workers(), pool.http_processes(), pool.workers_per_front()) == (4, 2, 2)
    colocated = Settings(workers=4, serving="colocated")
    assert (colocated.http_processes(), colocated.workers_per_front()) == (4, 1)
    with pytest.raises(ValueError, match="3 model workers do not divide among 2 fronts"):
        Settings(workers=3, fronts=2).workers_per_front()


def test_bad_value_exits_naming_variable_value_and_expectation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTCLF_PORT", "70000")
    monkeypatch.setenv("TEXTCLF_LOG_LEVEL", "loud")
    with pytest.raises(SystemExit) as err:
        load_settings()
    message = str(err.value)
    assert "TEXTCLF_PORT='70000'" in message and "less than or equal to 65535" in message
    assert "TEXTCLF_LOG_LEVEL='loud'" in message


def test_cache_with_entries_needs_a_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTCLF_CACHE_MAX_BYTES", "0")
    with pytest.raises(SystemExit, match="cache_max_bytes"):
        load_settings()


def test_a_model_worker_is_told_its_own_settings_and_reads_them_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTCLF_MODEL_DIR", "/models/x")
    monkeypatch.setenv("TEXTCLF_MODEL_WORKER_NICE", "3")
    monkeypatch.setenv("TEXTCLF_LOG_FORMAT", "text")
    told = load_settings().for_model_workers()
    assert {f.name for f in fields(told)} == set(ModelSettings.model_fields)  # all of them, no more
    assert (told.model_dir, told.model_worker_nice, told.log_format) == (Path("/models/x"), 3, "text")
    option, text = told.arguments()
    assert option == "--settings" and WorkerSettings.from_json(text) == told


def test_settings_are_frozen() -> None:
    with pytest.raises(ValueError):
        Settings().port = 1  # type: ignore[misc]


def test_describe_lists_every_setting_with_its_variable() -> None:
    text = describe()
    for name in OWN_FIELDS:
        assert f"TEXTCLF_{name.upper()}" in text
    for name in TracingSettings.model_fields:
        assert f"OTEL_{name.upper()}" in text


def test_misspelled_variable_stops_start_up_naming_the_closest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTCLF_MAX_INFLIGHT", "8")
    with pytest.raises(SystemExit) as err:
        load_settings()
    assert "TEXTCLF_MAX_INFLIGHT: no such setting; did you mean TEXTCLF_MAX_IN_FLIGHT?" in str(err.value)


def test_drain_time_takes_whole_seconds_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0.5 once passed and became 0: every in-flight request cancelled on SIGTERM.
    monkeypatch.setenv("TEXTCLF_GRACEFUL_SHUTDOWN_SECONDS", "0.5")
    with pytest.raises(SystemExit, match=r"TEXTCLF_GRACEFUL_SHUTDOWN_SECONDS='0.5'"):
        load_settings()
    monkeypatch.setenv("TEXTCLF_GRACEFUL_SHUTDOWN_SECONDS", "2")
    assert load_settings().graceful_shutdown_seconds == 2


SECRET = "tok-9f8e7d-do-not-print"


@pytest.mark.parametrize("args", [[], ["--help"]])
def test_no_start_up_message_shows_a_token(args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTCLF_")} | {
        "TEXTCLF_API_TOKENS": SECRET,
        "TEXTCLF_API_TOKENS_FILE": "/nonexistent/tokens",  # fails the check across fields
        "TEXTCLF_API_TOKEN": SECRET,  # misspelled: named, its value not shown
    }
    result = subprocess.run(
        [sys.executable, "-m", "service", *args], env=env, capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert SECRET not in output
    if not args:
        assert result.returncode != 0
        assert "api_tokens_file /nonexistent/tokens is not a readable file" in output
        assert "TEXTCLF_API_TOKEN: no such setting; did you mean TEXTCLF_API_TOKENS?" in output


def test_a_bad_opentelemetry_variable_stops_start_up_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(SystemExit) as err:
        load_settings()
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='http/json'" in str(err.value)


TOKEN = "tok-0123456789abcdef"  # 20 characters: fit


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("---", "a token is shorter than 16 characters"),  # not a comment: a token, and too short
        ("short-7f3a", "a token is shorter than 16 characters"),
        ("tok-0123456789 abcdef", "a token contains whitespace"),
        (f"{TOKEN} # a trailing comment", "a token contains whitespace"),
    ],
)
def test_an_unfit_token_in_the_file_stops_start_up_naming_its_line_not_its_value(
    tmp_path: Path, line: str, problem: str
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# tokens\n{TOKEN}\n{line}\n")
    assert read_tokens_file(tokens) == ([TOKEN], [f"{tokens} line 3: {problem}"])
    # The launcher refuses it before anything else (the model folder does not even exist).
    result = subprocess.run(
        [sys.executable, "-m", "service"],
        env={"TEXTCLF_API_TOKENS_FILE": str(tokens), "TEXTCLF_MODEL_DIR": str(tmp_path / "none"), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"TEXTCLF_API_TOKENS_FILE {tokens} line 3: {problem}" in result.stderr
    assert line not in result.stderr and TOKEN not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        ("short-7f3a", "the comma-separated token 1: a token is shorter than 16 characters"),
        (f"{TOKEN}, ---", "the comma-separated token 2: a token is shorter than 16 characters"),
        (f"{TOKEN},tok-0123456789 abcdef", "the comma-separated token 2: a token contains whitespace"),
    ],
)
def test_an_unfit_token_in_the_variable_stops_start_up_without_its_value(
    monkeypatch: pytest.MonkeyPatch, tokens: str, problem: str
) -> None:
    monkeypatch.setenv("TEXTCLF_API_TOKENS", tokens)
    with pytest.raises(SystemExit) as err:
        load_settings()
    message = str(err.value)
    assert "TEXTCLF_API_TOKENS=<hidden>" in message and problem in message
    assert all(t.strip() not in message for t in tokens.split(","))
