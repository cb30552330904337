"""Each process imports only what it runs: the HTTP front never loads the model runtime (in pool
mode: colocated mode loads it when it starts its model), a model worker never loads the web stack,
the front's metrics and cache, or the settings and manifest schemas (pydantic: its front checked
them), and the classify core (errors, the cache-first dispatch, the pool) no web framework."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

MODEL_RUNTIME = ("onnxruntime", "tokenizers", "numpy", "transformers", "torch")
WEB = ("fastapi", "starlette", "uvicorn", "click")
FRONT_ONLY = (*WEB, "prometheus_client", "cachetools", "httptools", "uvloop", "pydantic", "pydantic_settings")
CORE = ", ".join(
    f"service.front.core.{m}"
    for m in ("errors", "classify", "cached_dispatch", "result_cache", "model_pool", "local_model")
)


def loaded(modules: str, watched: Sequence[str]) -> list[str]:
    """Which of `watched` a fresh interpreter has imported once it imported `modules`."""
    code = f"import sys, {modules}; print(' '.join(m for m in {tuple(watched)!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_the_front_never_imports_the_model_runtime() -> None:
    assert (
        loaded(
            "service.front.server.launcher, service.front.app, service.front.api.classify_routes",
            MODEL_RUNTIME,
        )
        == []
    )


def test_a_model_worker_never_imports_the_front() -> None:
    assert loaded("service.model_worker.serve", FRONT_ONLY) == []
    assert "onnxruntime" in loaded("service.model_worker.serve", MODEL_RUNTIME)  # the check sees imports


def test_the_amx_timer_loads_no_model_runtime_before_its_child_refuses_amx() -> None:
    assert loaded("load_tests.amx", MODEL_RUNTIME) == []  # onnxruntime would ask for AMX first


def test_the_classify_core_imports_no_web_framework() -> None:
    assert loaded(CORE, WEB) == []
    assert "fastapi" in loaded("service.front.app", WEB)  # the check sees imports


def test_with_tracing_off_the_front_loads_no_tracing() -> None:
    # FastAPI itself imports the OpenTelemetry API; the SDK, the exporters and ours stay out.
    code = (
        "import sys; from service.config import Settings; from service.front.app import create_app; "
        "create_app(Settings()); print(sorted({m.split('.')[1] for m in sys.modules "
        "if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter', "
        "'service.front.telemetry.tracing'))}))"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ
    )
    assert result.stdout.split() == ["[]"]
