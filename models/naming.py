"""A built model's default name: what it was built from and how deep it is, so a team's 12-layer
intent model is not served as someone else's sentiment model."""

from __future__ import annotations

import json
import re
from pathlib import Path

from models.source import DEFAULT_SOURCE

# The default build's parts: its name stays what deployments and dashboards already know.
PACKAGED_SOURCE_NAME = "minilm"
BUNDLED_DATA_NAME = "sentiment"


def slug(text: str) -> str:
    """Lower-case letters, digits and single hyphens: safe in a URL path and a metric label."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def source_name(source: str) -> str:
    """The source's short name: the packaged encoder's, or a folder or hub id's last part; a folder
    this pipeline fine-tuned (its train.json says from what) is named for what it was built from."""
    if source == DEFAULT_SOURCE:
        return PACKAGED_SOURCE_NAME
    trained = Path(source) / "train.json"
    if trained.is_file():
        return source_name(str(json.loads(trained.read_text())["source"]))
    return slug(Path(source.rstrip("/")).name)


def base_name(source: str, data_file: Path | None) -> str:
    """`<source>-<data>`: the source's name and the data file's name (the packaged encoder and the
    bundled corpus have short names of their own)."""
    model = source_name(source)
    data = BUNDLED_DATA_NAME if data_file is None else slug(data_file.stem)
    return "-".join(part for part in (model, data) if part) or "model"


def model_name(base: str, layers: int) -> str:
    """The manifest's name: the base and the encoder's layer count."""
    return f"{base}-l{layers}"
