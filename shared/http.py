"""The HTTP edge: the one place that turns exceptions into `application/problem+json` responses
(RFC 9457), plus small helpers for JSON bodies and authenticated calls."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azure.core.exceptions import AzureError

from shared.auth import Principal, client_address
from shared.errors import ServiceError
from shared.idempotency import StoredAnswer
from shared.logs import configure_worker_logging, correlated
from shared.storage import storage_errors

if TYPE_CHECKING:
    from shared.app import App

if TYPE_CHECKING:
    from shared.auth import Principal

log = logging.getLogger(__name__)

Handler = Callable[[func.HttpRequest, "App"], func.HttpResponse]
PROBLEM_BASE = "https://errors.media-api.example/"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers=headers,
        mimetype="application/json",
        charset="utf-8",
    )


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> func.HttpResponse:
    body = problem_body(status, title, detail, code, extra)
    return func.HttpResponse(
        json.dumps(body),
        status_code=status,
        headers=headers,
        mimetype="application/problem+json",
        charset="utf-8",
    )


def replayed(answer: StoredAnswer) -> func.HttpResponse:
    """A response stored under an Idempotency-Key, given again."""
    return func.HttpResponse(
        answer.body,
        status_code=answer.status,
        headers=answer.headers,
        mimetype=answer.mimetype,
        charset="utf-8",
    )


def problem_body(
    status: int, title: str, detail: str, code: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + code.replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **(extra or {}),
    }


def problem_of(exc: ServiceError) -> dict[str, Any]:
    """The problem body `exc` is answered with, for embedding in another answer."""
    return problem_body(exc.status, exc.title, exc.detail, exc.code, exc.extra)


def to_problem(exc: ServiceError) -> func.HttpResponse:
    return problem(
        exc.status, exc.title, exc.detail, exc.code, headers=exc.headers, extra=exc.extra
    )


def correlation_for(req: func.HttpRequest, context: func.Context | None) -> str:
    traceparent = _TRACEPARENT.match(req.headers.get("traceparent", ""))
    if traceparent:
        return traceparent.group(1)
    if context is not None and getattr(context, "invocation_id", None):
        return str(context.invocation_id)
    return uuid.uuid4().hex


def serve(
    req: func.HttpRequest, context: func.Context | None, handler: Handler
) -> func.HttpResponse:
    """Run one HTTP handler: errors become problems; nothing internal leaks to the client. A
    storage SDK error that reached here untranslated is translated as the stores do
    (`shared.storage.storage_errors`)."""
    from shared.app import current  # the composition root imports this module

    configure_worker_logging()
    correlation = correlation_for(req, context)
    with correlated(correlation):
        try:
            try:
                response = handler(req, current())
            except AzureError as exc:
                log.warning("storage error reached the boundary untranslated", exc_info=True)
                with storage_errors():
                    raise exc from None
        except ServiceError as exc:
            # A 500 is our defect: the client gets a correlation id, not its detail.
            response = _internal_error(correlation) if exc.status == 500 else to_problem(exc)
        except Exception:  # noqa: BLE001 - the one boundary where anything unexpected becomes a 500
            response = _internal_error(correlation)
        response.headers["X-Correlation-Id"] = correlation
        return response


def _internal_error(correlation: str) -> func.HttpResponse:
    log.exception("unhandled error")
    return problem(
        500,
        "Internal Server Error",
        "An unexpected error occurred. Quote the correlation id when contacting support.",
        "internal_error",
        extra={"correlationId": correlation},
    )


def authenticate(req: func.HttpRequest, app: App) -> Principal:
    return app.auth.authenticate(req.headers.get("Authorization"), client_address(req.headers))
