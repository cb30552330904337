#!/usr/bin/env bash
# The real tools the tests drive, installed when missing (`make test` runs this first): Prometheus and
# promtool (the rules' unit tests and a live scrape of the service), and kubectl (renders the
# Kubernetes overlays offline, `kubectl kustomize`).
set -euo pipefail
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus
fi

# Debian bookworm has no kubectl package; some machine images ship Google Cloud SDK's. Install it
# where a repository offers it, and otherwise stop here with the reason rather than fail deep in the
# test run.
if ! command -v kubectl >/dev/null; then
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends kubectl \
        || { echo "kubectl is needed by tests/deploy/test_k8s.py and no repository offers it" >&2; exit 1; }
fi
