"""Status changes of outbound messages, told to the customer's optional `statusCallback`, and
the carrier's signed delivery reports that move a message to `delivered` or `failed`."""

from __future__ import annotations

import json
import time
from typing import Any

import azure.functions as func

from shared.app import App
from shared.errors import BadRequest, NotConfigured, NotFound
from shared.http import json_response
from shared.inbound.signature import verify_carrier_signature
from shared.messages.store import Message, MessageStore
from shared.webhooks import WebhookTarget, enqueue_webhook

STATUS_EVENT = "message.status"
_CARRIER_STATUSES = {"sent", "delivered", "failed"}


def notify_status(app: App, message: Message | None) -> None:
    """Queue a signed webhook for this status, once per (message, status), if one was asked for.
    The tenant's webhook secrets sign it, as they sign inbound messages, read at each try."""
    if message is None or not message.status_callback:
        return
    payload: dict[str, Any] = {
        "messageId": message.message_id,
        "from": message.from_number,
        "to": message.to,
        "status": message.status,
        "timestamp": message.history[-1]["at"] if message.history else None,
    }
    if message.failure_reason:
        payload["failureReason"] = message.failure_reason
    target = WebhookTarget(message.tenant_id, url=message.status_callback)
    enqueue_webhook(
        app, target, STATUS_EVENT, payload, idempotency_key=f"{message.message_id}:{message.status}"
    )


def advance(
    app: App, tenant_id: str, message_id: str, status: str, **changes: Any
) -> Message | None:
    """Move a message forward and tell its status callback; None when the move was stale."""
    updated = MessageStore(app.storage).transition(tenant_id, message_id, status, **changes)
    notify_status(app, updated)
    return updated


def carrier_status(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/webhooks/carrier-status: the carrier's delivery report, signed like inbound
    messages. Body: {"messageId", "from", "status": sent|delivered|failed, "reason"?}."""
    secret = app.settings.carrier_webhook_secret
    if secret is None:
        raise NotConfigured("Carrier callbacks are not configured.", code="carrier_not_configured")
    body = req.get_body()
    if len(body) > 16 * 1024:
        raise BadRequest("The report is too large.", code="report_too_large")
    verify_carrier_signature(
        secret.get_secret_value(), req.headers, body, now=time.time(),
        tolerance=app.settings.carrier_signature_tolerance_seconds,
    )  # fmt: skip
    try:
        report = json.loads(body)
        message_id, sender, status = report["messageId"], report["from"], report["status"]
    except (ValueError, KeyError, TypeError):
        raise BadRequest(
            "A report needs messageId, from and status.", code="malformed_report"
        ) from None
    if status not in _CARRIER_STATUSES or not isinstance(message_id, str):
        raise BadRequest(f"Unknown status {status!r}.", code="malformed_report")
    tenant_id = app.directory.number_owner(str(sender))
    message = MessageStore(app.storage).get(tenant_id, message_id) if tenant_id else None
    if message is None:
        raise NotFound(f"message {message_id} not found", code="message_not_found")
    reason = str(report.get("reason") or "carrier_reported_failure") if status == "failed" else None
    updated = advance(app, message.tenant_id, message_id, status, reason=reason)
    current = updated or MessageStore(app.storage).get(message.tenant_id, message_id)
    # A stale or duplicate report is acknowledged too: the carrier must not retry it forever.
    return json_response({"messageId": message_id, "status": current.status if current else status})
