"""Processing a recorded inbound event (the process_inbound queue trigger): fetch each attachment
through the SSRF-guarded client, check and store it under the receiving tenant the way an upload
is (`shared.media.ingest`), record the outcome per attachment, then queue the signed webhook.

Safe to run twice for one event: the record moves to `processed` with an etag condition (a
concurrent loser removes the media it stored), and the webhook's id is derived from the message
id, so it is queued once. The event leaves the pending index (shared.inbound.pending) only once
its webhook is queued: until then the recovery sweep queues it again if its message is lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.data.tables import UpdateMode

from shared.app import App
from shared.clock import now_iso
from shared.errors import ServiceError
from shared.inbound.event import CarrierAttachment
from shared.inbound.pending import clear_pending
from shared.inbound.records import (
    EVENT_TYPE,
    FAILED,
    INBOUND_TABLE,
    PROCESSED,
    InboundRecord,
    get_record,
)
from shared.media.store import MediaRecord
from shared.media.upload_request import TOO_LARGE
from shared.outbound import OutboundRefused, Reason
from shared.storage import job_fields
from shared.webhooks.deliveries import WebhookTarget, webhook_id_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rehosted:
    record: MediaRecord | None
    failure: dict[str, Any] | None


def process_inbound(app: App, message: bytes) -> None:
    fields = job_fields(message, "tenantId", "messageId")
    if fields is None:
        return
    tenant_id, message_id = fields
    record = get_record(app, tenant_id, message_id)
    if record is None:
        log.warning("inbound message %s has no record; dropping its queue message", message_id)
        return
    if record.state != PROCESSED:
        record = _rehost_all(app, record)
        if record is None:
            return
    notify(app, record)
    clear_pending(app, tenant_id, message_id)


def _rehost_all(app: App, record: InboundRecord) -> InboundRecord | None:
    carrier = record.event.carrier
    results = [
        rehost(app, record.tenant_id, record.event.to, index, attachment,
               credentials=app.carriers.media_credentials(carrier, attachment.url))
        for index, attachment in enumerate(record.event.attachments)
    ]  # fmt: skip
    stored = [r.record for r in results if r.record is not None]
    attachments = [_attachment(m) for m in stored]
    failed = [r.failure for r in results if r.failure is not None]
    webhook_id = webhook_id_for(f"{EVENT_TYPE}:{record.message_id}")
    update = {
        "PartitionKey": record.tenant_id,
        "RowKey": record.message_id,
        "State": PROCESSED,
        "ProcessedAt": now_iso(),
        "Attachments": json.dumps(attachments),
        "FailedAttachments": json.dumps(failed),
        "WebhookId": webhook_id,
    }
    try:
        app.storage.table(INBOUND_TABLE).update_entity(
            update,
            mode=UpdateMode.MERGE,
            etag=record.etag,
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        # Another worker processed this event first; its media are the ones on record.
        for media in stored:
            app.media.delete(media)
        return None
    return get_record(app, record.tenant_id, record.message_id)


def notify(app: App, record: InboundRecord) -> None:
    app.webhooks.enqueue(
        WebhookTarget(record.tenant_id),
        EVENT_TYPE,
        record.payload(),
        idempotency_key=record.message_id,
    )


def _attachment(media: MediaRecord) -> dict[str, Any]:
    return {
        "name": media.file_name,
        "url": media.uri,
        "contentType": media.content_type,
        "size": media.size,
        "mediaId": media.media_id,
    }


def rehost(
    app: App, tenant_id: str, number: str, index: int, attachment: CarrierAttachment,
    *, credentials: Mapping[str, str] | None = None,
) -> Rehosted:  # fmt: skip
    """Fetch, check and store one attachment; any refusal becomes a reported failure. Stored as
    received: what a person sent reaches the customer unshrunk (the optimiser is for sends)."""
    try:
        fetched = app.outbound.fetch(
            attachment.url, max_bytes=app.settings.max_media_bytes, credentials=credentials
        )
        record = app.ingest.store(
            tenant_id=tenant_id,
            phone_number=number,
            file_name=attachment.name,
            declared_type=attachment.content_type or fetched.content_type or "",
            data=fetched.content,
            optimize=False,
            source="inbound",
            index=index,
        )
    except OutboundRefused as exc:
        if exc.reason == Reason.TOO_LARGE:
            return _failed(index, attachment, "media_too_large", TOO_LARGE)
        return _failed(index, attachment, str(exc.reason), exc.message)
    except ServiceError as exc:
        if exc.status >= 500:
            # Ours, not the attachment's (storage down, the signing key or a stored access
            # policy missing): the queue retries once an operator has fixed it, and the poison
            # queue ends the event visibly if nobody does.
            raise
        return _failed(index, attachment, exc.code, exc.detail)
    return Rehosted(record, None)


def _failed(index: int, attachment: CarrierAttachment, code: str, message: str) -> Rehosted:
    log.warning("inbound attachment %d refused: %s", index, code)
    failure = {
        "index": index,
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": attachment.size,
        "error": {"code": code, "message": message},
    }
    return Rehosted(None, failure)


def fail_poisoned(app: App, message: bytes) -> None:
    """An event the runtime gave up processing (it crashed on every dequeue) is marked `failed`
    on its record, so GET shows it rather than a message forever `received`."""
    fields = job_fields(message, "tenantId", "messageId")
    if fields is None:
        return
    tenant_id, message_id = fields
    record = get_record(app, tenant_id, message_id)
    if record is None or record.state == PROCESSED:
        return
    app.storage.table(INBOUND_TABLE).update_entity(
        {"PartitionKey": tenant_id, "RowKey": message_id, "State": FAILED,
         "FailureReason": "processing_crashed"}
    )  # fmt: skip
    clear_pending(app, tenant_id, message_id)
    log.error("inbound message %s failed: processing crashed on every try", message_id)
