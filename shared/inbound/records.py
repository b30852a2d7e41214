"""Inbound messages in Table Storage: `inboundmessages`, partition = receiving tenant, row = our
message id, which is derived from the carrier's `messageId` so that the first write doubles as
the replay check (a conditional insert: a replay finds the row already there)."""

from __future__ import annotations

import json
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from shared.app import App
from shared.clock import now_iso
from shared.inbound.event import CarrierEvent, decode_event, encode_event
from shared.inbound.pending import clear_pending, mark_pending

INBOUND_TABLE = "inboundmessages"
EVENT_TYPE = "message.received"
RECEIVED, PROCESSED, FAILED = "received", "processed", "failed"
_NAMESPACE = uuid.UUID("0b8f5a8e-2d0c-4a43-9a4b-0d6a3c1e7f21")


def message_id_for(carrier_message_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, carrier_message_id))


@dataclass(frozen=True)
class Accepted:
    message_id: str
    duplicate: bool


@dataclass(frozen=True)
class InboundRecord:
    tenant_id: str
    message_id: str
    event: CarrierEvent
    state: str
    received_at: str
    processed_at: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    failed_attachments: list[dict[str, Any]] = field(default_factory=list)
    webhook_id: str | None = None
    etag: str = ""

    @classmethod
    def from_entity(cls, e: dict[str, Any]) -> InboundRecord:
        return cls(
            tenant_id=str(e["PartitionKey"]),
            message_id=str(e["RowKey"]),
            event=decode_event(str(e["Event"])),
            state=str(e["State"]),
            received_at=str(e["ReceivedAt"]),
            processed_at=str(e.get("ProcessedAt") or "") or None,
            attachments=json.loads(str(e.get("Attachments") or "[]")),
            failed_attachments=json.loads(str(e.get("FailedAttachments") or "[]")),
            webhook_id=str(e.get("WebhookId") or "") or None,
            etag=str(e.metadata["etag"]) if hasattr(e, "metadata") else "",
        )

    def payload(self) -> dict[str, Any]:
        """The customer webhook body: the guide's fields, then ours. `attachments` holds only
        re-hosted files (the guide's download loop works unchanged); the ones we could not
        fetch or accept are listed in `failedAttachments` with an `error` each."""
        return {
            "messageId": self.message_id,
            "from": self.event.from_,
            "message": self.event.message or "",
            "attachments": [
                {k: a[k] for k in ("name", "url", "contentType", "size")} for a in self.attachments
            ],
            "to": self.event.to,
            "receivedAt": self.received_at,
            "failedAttachments": self.failed_attachments,
        }


def queue_processing(app: App, tenant_id: str, message_id: str) -> None:
    body = json.dumps({"tenantId": tenant_id, "messageId": message_id})
    app.storage.queue(app.settings.inbound_queue).send_message(body)


def accept(app: App, tenant_id: str, event: CarrierEvent) -> Accepted:
    """Make the event durable and queue its processing; a replay is recognised and not queued
    again unless its first delivery evidently never reached the queue. The event is indexed as
    pending first, so a lost queue message is found by shared.inbound.recovery."""
    message_id = message_id_for(event.message_id)
    indexed = mark_pending(app, tenant_id, message_id)
    table = app.storage.table(INBOUND_TABLE)
    entity = {
        "PartitionKey": tenant_id,
        "RowKey": message_id,
        "CarrierMessageId": event.message_id,
        "From": event.from_,
        "To": event.to,
        "Event": encode_event(event),
        "State": RECEIVED,
        "ReceivedAt": now_iso(),
    }
    try:
        table.create_entity(entity)
    except ResourceExistsError:
        existing = table.get_entity(tenant_id, message_id)
        if indexed and existing["State"] != RECEIVED:
            clear_pending(app, tenant_id, message_id)  # a replay of an event already done
        received = datetime.fromisoformat(str(existing["ReceivedAt"]))
        stale = timedelta(seconds=app.settings.inbound_requeue_after_seconds)
        if existing["State"] == RECEIVED and datetime.now(UTC) - received > stale:
            queue_processing(app, tenant_id, message_id)
        return Accepted(message_id, duplicate=True)
    try:
        queue_processing(app, tenant_id, message_id)
    except BaseException:
        # Not queued: forget the event so the carrier's retry of this failed request is new.
        with suppress(AzureError):
            table.delete_entity(tenant_id, message_id)
        raise
    return Accepted(message_id, duplicate=False)


def get_record(app: App, tenant_id: str, message_id: str) -> InboundRecord | None:
    try:
        entity = app.storage.table(INBOUND_TABLE).get_entity(tenant_id, message_id)
    except ResourceNotFoundError:
        return None
    return InboundRecord.from_entity(entity)
