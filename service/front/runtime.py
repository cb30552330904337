"""What the lifespan loads and every route reads: the settings, the metrics and, once warm, the model."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.artifact import Artifact
from service.config import Settings
from service.front.core.cached_dispatch import Backend
from service.front.core.classify import Classify
from service.front.core.errors import ErrorType, ServiceError
from service.front.telemetry.metrics import Metrics


@dataclass(frozen=True)
class Loaded:
    """The model a front serves, once loaded and warmed up."""

    artifact: Artifact
    classify: Classify
    model_ref: dict[str, str] = field(init=False)  # in every response: built once

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_ref", {"name": self.artifact.name, "version": self.artifact.version})

    @property
    def backend(self) -> Backend:
        """Where its misses are computed: the model workers, or the colocated model."""
        return self.classify.dispatch.backend


@dataclass
class Runtime:
    """What the lifespan loads and the routes use; `loaded` is set only after warm-up."""

    settings: Settings
    metrics: Metrics
    loaded: Loaded | None = None
    stopping: bool = False  # SIGTERM arrived: draining

    def require_loaded(self) -> Loaded:
        """The loaded model, or 503 `not_ready`."""
        if self.loaded is None:
            raise ServiceError(ErrorType.NOT_READY, "model is not loaded yet")
        return self.loaded
