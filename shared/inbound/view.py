"""What a customer sees of an inbound message: GET /api/v1/messages/{messageId}."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import azure.functions as func

from shared.app import App
from shared.errors import NotFound
from shared.http import authenticate, json_response
from shared.inbound.records import get_record
from shared.webhooks.deliveries import delivery_view


def inbound_message_view(
    app: App, tenant_ids: Iterable[str], message_id: str
) -> dict[str, Any] | None:
    """The message if it was received by one of `tenant_ids` (point reads), else None."""
    for tenant_id in sorted(tenant_ids):
        record = get_record(app, tenant_id, message_id)
        if record is None:
            continue
        event = record.event
        return {
            "messageId": record.message_id,
            "direction": "inbound",
            "status": record.state,
            "tenantId": record.tenant_id,
            "from": event.from_,
            "to": event.to,
            "message": event.message or "",
            "receivedAt": record.received_at,
            "processedAt": record.processed_at,
            "attachments": record.attachments,
            "failedAttachments": record.failed_attachments,
            "webhook": delivery_view(app, tenant_id, record.webhook_id)
            if record.webhook_id
            else None,
        }
    return None


def get_message(req: func.HttpRequest, app: App) -> func.HttpResponse:
    principal = authenticate(req, app)
    raw = req.route_params.get("messageId", "")
    try:
        message_id = str(uuid.UUID(raw))
    except ValueError:
        message_id = ""
    view = inbound_message_view(app, principal.tenant_ids, message_id) if message_id else None
    if view is None:
        # Another tenant's message is indistinguishable from none at all.
        raise NotFound(f"message {raw} not found", code="message_not_found")
    return json_response(view)
