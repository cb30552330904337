"""Low-latency CPU text classification service."""
