"""Logging: one JSON object per line (or uvicorn's text format), with the request id of the request
being served. Request texts are never logged."""

from __future__ import annotations

import copy
import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from uvicorn.config import LOGGING_CONFIG

# Set by service.front.requestid for the request being served; read by every log record.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# Set by service.front.tracing, when tracing is on: the request's trace and span ids (hex).
TRACE_IDS: ContextVar[tuple[str, str] | None] = ContextVar("trace_ids", default=None)
# Fields a record may carry (logger.info(..., extra={...})) that belong in the JSON line.
FIELDS = ("method", "route", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, request_id, trace ids, fields."""

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
        return json.dumps(line, ensure_ascii=False, default=str)


def log_config(level: str, fmt: Literal["json", "text"]) -> dict[str, Any]:
    """uvicorn's logging config with the service's loggers added, in JSON or uvicorn's text."""
    config = copy.deepcopy(LOGGING_CONFIG)
    if fmt == "json":
        for formatter in config["formatters"].values():
            formatter.clear()
            formatter["()"] = "service.logs.JsonFormatter"
    for name in ("service", "service.access"):
        config["loggers"][name] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    # The trace exporter's complaints (a collector down), in the same format; never request data.
    config["loggers"]["opentelemetry"] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
    # The service writes its own access lines (service.front.instrument): uvicorn's would log the raw path.
    config["loggers"]["uvicorn.access"] = {"handlers": [], "level": "CRITICAL", "propagate": False}
    return config
