"""Offline pipeline that builds the service's model artifact (data, train, export, quantize, evaluate)."""
