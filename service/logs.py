"""Logging: one JSON object per line (or plain text), with the request id of the request being
served. Request texts are never logged. Model workers use it too: nothing of the web stack here."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["json", "text"]  # one JSON object per line, or text

# Set by the edge (service.front.edge.edge) for the request being served; read by every log record.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# Set by service.front.telemetry.tracing, when tracing is on: the request's trace and span ids (hex).
TRACE_IDS: ContextVar[tuple[str, str] | None] = ContextVar("trace_ids", default=None)
# Fields a record may carry (logger.info(..., extra={...})) that belong in the JSON line.
FIELDS = ("method", "route", "status", "duration_ms")


# The OpenTelemetry loggers that warn about a caller's malformed traceparent or tracestate, quoting it.
TRACE_HEADER_LOGGERS = ("opentelemetry.trace.span", "opentelemetry.trace.propagation.tracecontext")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, request_id, trace ids, fields.

    The line is ASCII: every other character is escaped (\\u0085), so no control character, C0 or
    C1 (U+0080-U+009F: NEL ends a line, CSI drives a terminal), nor U+2028 or a bidi override, reaches
    a log viewer raw, whatever a message quotes.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        trace_ids = TRACE_IDS.get()
        if trace_ids is not None:
            line["trace_id"], line["span_id"] = trace_ids
        line |= {f: getattr(record, f) for f in FIELDS if hasattr(record, f)}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class FirstTraceHeaderWarning(logging.Filter):
    """Passes the first warning of TRACE_HEADER_LOGGERS in this process, reworded without the header's
    value, and drops the rest: the SDK warns on every request with a malformed header, quoting it,
    so a caller could otherwise write what it likes into every log line."""

    MESSAGE = "ignored a caller's malformed traceparent or tracestate header (only the first is logged)"

    def __init__(self) -> None:
        super().__init__()
        self.logged = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.logged:
            return False
        self.logged = True
        record.msg, record.args = self.MESSAGE, ()
        return True


def log_config(level: LogLevel, fmt: LogFormat) -> dict[str, Any]:
    """The logging config of every process: the service's and uvicorn's loggers to stderr, as JSON
    lines or text (uvicorn is handed it; a model worker applies it itself)."""
    formatter = (
        {"()": "service.logs.JsonFormatter"} if fmt == "json" else {"format": "%(levelname)s: %(message)s"}
    )
    service = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "formatter": "default",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            }
        },
        "filters": {"trace_header": {"()": "service.logs.FirstTraceHeaderWarning"}},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            # The service writes its own access lines (service.front.edge.request_metrics): uvicorn's
            # would log the raw path.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "service": service,
            "service.access": service,
            # The trace exporter's complaints (a collector down), in the same format; never request data.
            "opentelemetry": {"handlers": ["default"], "level": "WARNING", "propagate": False},
            # One filter for both: the first of their warnings in all, without the caller's header.
            **{name: {"filters": ["trace_header"]} for name in TRACE_HEADER_LOGGERS},
        },
    }
