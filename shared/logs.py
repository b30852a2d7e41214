"""Structured logging: one JSON object per line carrying the invocation's correlation id."""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")

# SAS signatures and Basic credentials must never reach a log line.
_SECRETS = re.compile(r"(sig=)[^&\s\"']+|(Basic\s+)[A-Za-z0-9+/=]+", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "REDACTED", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "correlationId": correlation_id.get(),
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


class CorrelationFilter(logging.Filter):
    """Adds the correlation id to records handled by the Functions host's own handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        record.msg = redact(str(record.msg))
        return True


@contextmanager
def correlated(value: str) -> Iterator[None]:
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)


def configure_json_logging(level: int = logging.INFO) -> None:
    """For processes we own (local host, CLI); under Azure the worker owns the handlers."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("azure").setLevel(logging.WARNING)
