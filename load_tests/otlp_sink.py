"""An OTLP/HTTP trace collector on loopback: it takes each export as a real collector does and
hands the protobuf body to a callback. The benchmark counts bytes (a collector that costs the
service nothing); the tests decode the spans."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# An empty ExportTraceServiceResponse: its protobuf encoding is no bytes at all.
ACCEPTED = b""


@contextmanager
def otlp_sink(on_export: Callable[[bytes], None]) -> Iterator[str]:
    """The collector's base URL, for OTEL_EXPORTER_OTLP_ENDPOINT; each export's body goes to `on_export`."""

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            if self.headers.get("Content-Type") != "application/x-protobuf":
                self.send_error(415)
                return
            on_export(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(ACCEPTED)))
            self.end_headers()
            self.wfile.write(ACCEPTED)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, name="otlp-sink", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
