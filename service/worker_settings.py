"""What a model worker is told by its front, on its command line (`--settings JSON`): the model,
how it runs, how it logs. The front's settings (service.config.ModelSettings) declared and
validated them; a worker reads no TEXTCLF_* variable and imports no pydantic (11 MiB of private
memory a worker, docs/model.md, Memory)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

from service.logs import LogFormat, LogLevel

OPTION = "--settings"  # the model worker's command-line option that carries them, as JSON


@dataclass(frozen=True)
class WorkerSettings:
    """A model worker's settings: the fields of service.config.ModelSettings, checked by its front."""

    model_dir: Path
    model_worker_nice: int
    intra_op_spinning: bool
    warmup_runs: int
    model_graph: str
    graph_trial_seconds: float
    log_level: LogLevel
    log_format: LogFormat

    def arguments(self) -> list[str]:
        """The model worker's command-line arguments that tell it these settings."""
        return [OPTION, json.dumps(asdict(self) | {"model_dir": str(self.model_dir)})]

    @classmethod
    def from_json(cls, text: str) -> Self:
        """The settings from a `--settings` argument."""
        given = json.loads(text)
        return cls(**given | {"model_dir": Path(given["model_dir"])})
