"""What the front tells on-call engineers: Prometheus metrics (multiprocess) and OpenTelemetry spans."""
