"""The container image, checked without a Docker engine: its Dockerfile's promises, its pinned
runtime dependencies, and its entrypoint and HEALTHCHECK run for real with the image's settings."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from load_tests.server import free_port, running_service
from service.config import Settings
from service.probe import ready_url
from tests.conftest import Built

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LOCK = ROOT / "deploy" / "requirements.lock"


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            current = result.setdefault(args.split(" AS ")[-1].strip(), [])
        current.append((instruction.upper(), args.strip()))
    return result


def runtime_env() -> dict[str, str]:
    """The runtime stage's ENV, as the container sees it."""
    env: dict[str, str] = {}
    for instruction, args in stages()["runtime"]:
        if instruction == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return env


def exec_form(stage: str, instruction: str) -> list[str]:
    [args] = [a for i, a in stages()[stage] if i == instruction]
    command: list[str] = json.loads(args[args.index("[") :])
    return command


def pins() -> dict[str, str]:
    lines = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    return {n.lower().replace("_", "-"): v for n, v in (line.split("==") for line in lines)}


def test_runtime_stage_is_small_and_unprivileged() -> None:
    all_stages = stages()
    assert list(all_stages) == ["builder", "runtime"]
    runtime = " ".join(f"{i} {a}" for i, a in all_stages["runtime"])
    # Only the builder installs anything; the runtime stage copies the finished venv and artifact.
    assert "pip install" not in runtime and "apt-get" not in runtime
    assert not re.search(r"\b(torch|gcc|build-essential|transformers)\b", runtime)
    assert re.search(r"^USER 10001:10001$", DOCKERFILE.read_text(), re.M)
    assert exec_form("runtime", "ENTRYPOINT") == ["python", "-m", "service"]
    assert exec_form("runtime", "HEALTHCHECK") == ["python", "-m", "service.probe"]
    # The builder proves the runtime venv has no torch before the stage is copied.
    assert "find_spec('torch')" in " ".join(a for _, a in all_stages["builder"])


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]

    def sent(path: str) -> bool:
        included = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                included = negated
        return included

    copied = [a.split()[:-1] for i, a in stages()["builder"] if i == "COPY"]
    for sources in copied:
        for source in sources:
            assert (ROOT / source).exists(), source
            assert sent(source.rstrip("/")), f"{source} is excluded by .dockerignore"
    for heavy in [".venv", "artifacts", ".git", "tests", "bench-results"]:
        assert not sent(heavy), heavy


def test_runtime_dependencies_are_pinned_and_are_what_development_runs() -> None:
    locked = pins()
    assert "torch" not in locked and "transformers" not in locked
    for dependency in ["fastapi", "uvicorn", "onnxruntime", "tokenizers", "cachetools", "prometheus-client"]:
        assert dependency in locked, dependency
        # make install constrains the venv to the lock: the tests run the image's versions.
        assert version(dependency) == locked[dependency], dependency


def probe(env: dict[str, str]) -> int:
    return subprocess.run(
        [sys.executable, "-m", "service.probe"], env=env, capture_output=True, timeout=30, check=False
    ).returncode


def test_entrypoint_with_the_image_settings_serves_and_passes_its_healthcheck(
    small_model: Built, tmp_path: Path
) -> None:
    image = runtime_env()
    assert image["TEXTCLF_METRICS_DIR"].startswith("/tmp/")  # writable with a read-only root
    env = (
        dict(os.environ)
        | image
        | {
            # The same command and settings, on loopback, a free port and the test's model.
            "TEXTCLF_HOST": "127.0.0.1",
            "TEXTCLF_PORT": str(free_port()),
            "TEXTCLF_MODEL_DIR": str(small_model.artifact),
            "TEXTCLF_METRICS_DIR": str(tmp_path / "metrics"),
            "TEXTCLF_WORKERS": "1",
            "PATH": os.environ["PATH"],
        }
    )
    assert probe(env) == 1  # nothing listening yet
    entrypoint = exec_form("runtime", "ENTRYPOINT")
    server = subprocess.Popen(
        [sys.executable, *entrypoint[1:]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while probe(env) != 0:
            assert server.poll() is None, "the service exited"
            assert time.monotonic() < deadline, "never healthy"
            time.sleep(0.5)
    finally:
        server.terminate()
        assert server.wait(60) == 0
    assert probe(env) == 1  # and unhealthy once it is gone


def test_healthcheck_sends_the_services_token_when_health_routes_need_one(
    small_model: Built, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\nsecond-token\n")
    settings = {"TEXTCLF_API_TOKENS_FILE": str(tokens), "TEXTCLF_OPEN_HEALTH": "false"}
    with running_service(
        small_model.artifact, tmp_path / "log", workers=1, env=settings, token="second-token"
    ) as svc:
        assert httpx.get(svc.url + "/health/ready").status_code == 401
        port = str(svc.port)
        env = (
            dict(os.environ)
            | settings
            | {"TEXTCLF_PORT": port, "TEXTCLF_MODEL_DIR": str(small_model.artifact)}
        )
        assert probe(env) == 0
        tokens.write_text("another-token\n")  # the probe reads the same file: now a token the service refuses
        assert probe(env) == 1


@pytest.mark.parametrize(
    ("host", "expected"), [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("10.1.2.3", "10.1.2.3")]
)
def test_probe_reaches_a_wildcard_bound_service_on_loopback(host: str, expected: str) -> None:
    assert ready_url(Settings(host=host, port=8123)) == f"http://{expected}:8123/health/ready"
