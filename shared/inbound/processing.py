"""Processing a recorded inbound event (the process_inbound queue trigger): fetch each attachment
through the SSRF-guarded client, check and store it under the receiving tenant the way an upload
is (`shared.media.ingest`), record the outcome per attachment, then queue the signed webhook.

Safe to run twice for one event: the record moves to `processed` with an etag condition (a
concurrent loser removes the media it stored), and the webhook's id is derived from the message
id, so it is queued once. The event leaves the pending index (shared.inbound.pending) only once
its webhook is queued: until then the recovery sweep queues it again if its message is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.clock import now_iso
from shared.errors import ChangedMeanwhile, ServiceError
from shared.inbound.event import CarrierAttachment
from shared.inbound.pending import PendingIndex
from shared.inbound.records import (
    EVENT_TYPE,
    PROCESSED,
    InboundRecord,
    InboundRecords,
)
from shared.media.ingest import Ingest
from shared.media.store import MediaRecord, MediaStore
from shared.media.upload_request import TOO_LARGE
from shared.outbound import OutboundClient, OutboundRefused, Reason
from shared.storage import job_fields
from shared.webhooks.deliveries import WebhookDeliveries, WebhookTarget, keyed_webhook_id

log = logging.getLogger(__name__)


# The headers that fetch an attachment of a carrier at a URL, if that carrier requires any.
MediaCredentials = Callable[[str | None, str], Mapping[str, str] | None]


@dataclass(frozen=True)
class Rehosted:
    record: MediaRecord | None
    failure: dict[str, Any] | None


@dataclass(frozen=True)
class InboundProcessor:
    records: InboundRecords
    pending: PendingIndex
    outbound: OutboundClient
    ingest: Ingest
    media: MediaStore
    webhooks: WebhookDeliveries
    media_credentials: MediaCredentials
    max_media_bytes: int

    def process(self, message: bytes) -> None:
        """Handle one process_inbound queue message."""
        fields = job_fields(message, "tenantId", "messageId")
        if fields is None:
            return
        tenant_id, message_id = fields
        record = self.records.get(tenant_id, message_id)
        if record is None:
            log.warning("inbound message %s has no record; dropping its queue message", message_id)
            return
        if record.state != PROCESSED:
            record = self._rehost_all(record)
            if record is None:
                return
        self.webhooks.enqueue(
            WebhookTarget(record.tenant_id),
            EVENT_TYPE,
            record.payload(),
            idempotency_key=record.message_id,
        )
        self.pending.clear(tenant_id, message_id)

    def _rehost_all(self, record: InboundRecord) -> InboundRecord | None:
        carrier = record.event.carrier
        results = [
            self.rehost(record.tenant_id, record.event.to, index, attachment,
                        credentials=self.media_credentials(carrier, attachment.url))
            for index, attachment in enumerate(record.event.attachments)
        ]  # fmt: skip
        stored = [r.record for r in results if r.record is not None]
        outcome = {
            "state": PROCESSED,
            "processed_at": now_iso(),
            "attachments": [_attachment(m) for m in stored],
            "failed_attachments": [r.failure for r in results if r.failure is not None],
            "webhook_id": keyed_webhook_id(EVENT_TYPE, record.message_id),
        }
        current: InboundRecord | None = record
        while current is not None and current.state != PROCESSED:
            try:
                return self.records.update(current.changed(**outcome))
            except ChangedMeanwhile:
                # Touched by a duplicate accept (not processed: still ours to finish), or
                # processed by another worker first, whose media are then the ones on record.
                current = self.records.get(record.tenant_id, record.message_id)
        for media in stored:
            self.media.delete(media)
        return None

    def rehost(
        self, tenant_id: str, number: str, index: int, attachment: CarrierAttachment,
        *, credentials: Mapping[str, str] | None = None,
    ) -> Rehosted:  # fmt: skip
        """Fetch, check and store one attachment; any refusal becomes a reported failure. Stored
        as received: what a person sent reaches the customer unshrunk (the optimiser is for
        sends)."""
        try:
            fetched = self.outbound.fetch(
                attachment.url, max_bytes=self.max_media_bytes, credentials=credentials
            )
            record = self.ingest.store(
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
                # policy missing): the queue retries once an operator has fixed it, and the
                # poison queue ends the event visibly if nobody does.
                raise
            return _failed(index, attachment, exc.code, exc.detail)
        return Rehosted(record, None)

    def fail_poisoned(self, message: bytes) -> None:
        """An event the runtime gave up processing (it crashed on every dequeue) is marked
        `failed` on its record, so GET shows it rather than a message forever `received`."""
        fields = job_fields(message, "tenantId", "messageId")
        if fields is None:
            return
        tenant_id, message_id = fields
        if self.records.mark_failed(tenant_id, message_id, "processing_crashed") is None:
            return
        self.pending.clear(tenant_id, message_id)
        log.error("inbound message %s failed: processing crashed on every try", message_id)


def _attachment(media: MediaRecord) -> dict[str, Any]:
    return {
        "name": media.file_name,
        "url": media.uri,
        "contentType": media.content_type,
        "size": media.size,
        "mediaId": media.media_id,
    }


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
