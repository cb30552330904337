"""What a test's front tells its model workers."""

from __future__ import annotations

from typing import Any

from service.config import ModelSettings
from service.worker_settings import WorkerSettings
from tests.conftest import Built


def worker_settings(built: Built, **changes: Any) -> WorkerSettings:
    """The small model's, warmed briefly; the settings' defaults otherwise, or `changes`."""
    given: dict[str, Any] = {"model_dir": built.artifact, "warmup_runs": 2} | changes
    return ModelSettings(**given).for_model_workers()
