"""Structured logging: one JSON object per line carrying the invocation's correlation id, and
redaction of secrets (SAS signatures, credentials, keys) from every record the process makes."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")

# SAS signatures, Basic/Bearer/SharedKey credentials, account keys and webhook signing secrets
# must never reach a log line, whoever logs them (our code, the Azure SDK, urllib3, httpx).
_SECRETS = re.compile(
    r"(sig=|sig%3D)[^&\s\"']+"
    r"|(Basic\s+)[A-Za-z0-9+/=]+"
    r"|(Bearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|(SharedKey(?:Lite)?\s+[^:\s]+:)[A-Za-z0-9+/=]+"
    r"|(AccountKey=)[^;\s\"']+"
    r"|(whsec_)[A-Za-z0-9+/=]+",
    re.IGNORECASE,
)
# The Azure SDK logs every storage request and response at INFO; they would drown the app's own
# lines (and their headers are only redacted by an allow-list we do not control). httpx logs every
# request's full URL at INFO, and customers' media and webhook URLs carry tokens in their queries.
_CHATTY_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy", "httpx")


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: next(g for g in m.groups() if g) + "REDACTED", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "correlationId": getattr(record, "correlation_id", None) or correlation_id.get(),
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


@contextmanager
def correlated(value: str) -> Iterator[None]:
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)


@contextmanager
def invocation(context: object | None = None) -> Iterator[str]:
    """One function invocation: its log records carry the invocation id of the `context` the
    worker passes (a fresh id without one). For queue and blob shims; HTTP goes through
    `shared.http.serve`, which also honours an incoming `traceparent`."""
    configure_worker_logging()
    value = str(getattr(context, "invocation_id", None) or "") or uuid.uuid4().hex
    with correlated(value):
        yield value


class _RecordFactory:
    """Wraps the process's log record factory: each record gets the current correlation id and
    has secrets removed from its message and traceback when it is made, so every handler (the
    worker's, Application Insights', pytest's) sees the same safe record."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        record.correlation_id = correlation_id.get()
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            return record  # a malformed call: logging reports it when the record is emitted
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record


_configure_lock = threading.Lock()


def configure_worker_logging() -> None:
    """Install redaction and correlation on every log record of this process, and quieten the
    Azure SDK's per-request logging unless someone chose its level. Idempotent and cheap, so
    every invocation calls it; nothing happens at import."""
    if isinstance(logging.getLogRecordFactory(), _RecordFactory):
        return
    with _configure_lock:
        if isinstance(logging.getLogRecordFactory(), _RecordFactory):
            return
        for name in _CHATTY_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
        logging.setLogRecordFactory(_RecordFactory(logging.getLogRecordFactory()))


def configure_json_logging(level: int = logging.INFO) -> None:
    """For processes we own (local host, CLI); under Azure the worker owns the handlers."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("azure").setLevel(logging.WARNING)
    configure_worker_logging()
