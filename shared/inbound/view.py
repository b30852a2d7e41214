"""What a customer sees of an inbound message: GET /api/v1/messages/{messageId}."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.app import App


def inbound_message_view(
    app: App, tenant_ids: Iterable[str], message_id: str
) -> dict[str, Any] | None:
    """The message if it was received by one of `tenant_ids` (point reads), else None."""
    for tenant_id in sorted(tenant_ids):
        record = app.inbound_records.get(tenant_id, message_id)
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
            "webhook": app.webhooks.view(tenant_id, record.webhook_id)
            if record.webhook_id
            else None,
        }
    return None
