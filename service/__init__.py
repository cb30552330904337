"""Low-latency CPU text classification service."""

# The service's name and version as its APIs report them (OpenAPI, the Open Inference Protocol).
NAME = "textclf-service"
VERSION = "0.1.0"
