"""Accepting a send (validate, store one message per recipient, enqueue one job each) and
delivering one job (hold for pending media, hand to the gateway, retry or fail)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shared.app import App
from shared.errors import Forbidden
from shared.messages import segments
from shared.messages.gateway import (
    CarrierGateway,
    GatewayRejected,
    GatewayUnavailable,
    OutboundSms,
)
from shared.messages.media_urls import CheckedMedia, check_media_urls
from shared.messages.request import SendRequest
from shared.messages.status import advance, notify_status
from shared.messages.store import Message, MessageStore, now_iso
from shared.storage import job_fields

DELIVERY_QUEUE = "deliveries"
RECORD_GRACE_SECONDS = 120
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    messages: list[Message]
    media: list[CheckedMedia]


def sender_tenant(app: App, tenant_ids: frozenset[str], from_number: str) -> str:
    """The tenant that owns `from`, which the caller must be allowed to act for."""
    owner = app.directory.number_owner(from_number)
    if owner is None or owner not in tenant_ids:
        raise Forbidden(
            f"{from_number} is not a number provisioned for a tenant you may act for",
            code="number_not_provisioned",
        )
    return owner


def accept(app: App, tenant_id: str, request: SendRequest) -> Accepted:
    media = check_media_urls(app, tenant_id, request.media_urls)
    app.carriers.check_total(request.from_, [(m.size, m.media_id is not None) for m in media])
    described = segments.describe(request.body)
    batch = uuid.uuid4().hex
    created = now_iso()
    messages = [
        Message(
            tenant_id=tenant_id,
            message_id=str(uuid.uuid4()),
            from_number=request.from_,
            to=to,
            body=request.body,
            media=[m.to_entity() for m in media],
            status="queued",
            history=[{"status": "queued", "at": created}],
            created_at=created,
            segments=int(str(described["segments"])),
            encoding=str(described["encoding"]),
            status_callback=request.status_callback,
            batch_id=batch,
        )
        for to in request.to
    ]
    # Jobs first, records second: the records (at most 100, one tenant, so one atomic entity
    # group transaction) exist only if the whole acceptance succeeded. A job whose record never
    # came (storage failed in between; the client got a 503) is dropped by the worker, so a
    # failed request leaves neither a message stuck in `queued` nor one delivered unasked.
    queue = app.storage.queue(DELIVERY_QUEUE)
    enqueued_at = time.time()
    jobs = [json.dumps({"tenantId": m.tenant_id, "messageId": m.message_id, "attempt": 1,
                        "enqueuedAt": enqueued_at}) for m in messages]  # fmt: skip
    # One queue message per recipient, so a large fan-out spreads across instances.
    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        list(pool.map(queue.send_message, jobs))
    MessageStore(app.storage).insert_many(messages)
    return Accepted(messages, media)


def acceptance_body(accepted: Accepted, body: str) -> dict[str, Any]:
    messages = [
        {"messageId": m.message_id, "to": m.to, "status": m.status,
         "location": f"/api/v1/messages/{m.message_id}"}
        for m in accepted.messages
    ]  # fmt: skip
    result: dict[str, Any] = {"messages": messages}
    if accepted.media:
        result["type"] = "mms"
        result["mms"] = {
            "mediaCount": len(accepted.media),
            "estimatedBytes": segments.estimate_mms_bytes(body, [m.size for m in accepted.media]),
        }
    else:
        result["type"] = "sms"
        result["sms"] = segments.describe(body)
    return result


class Delivery:
    """The queue worker's logic for one delivery job."""

    def __init__(self, app: App, gateway: CarrierGateway) -> None:
        self.app = app
        self.store = MessageStore(app.storage)
        self.gateway = gateway

    def handle(self, job: dict[str, Any]) -> None:
        tenant_id, message_id = job["tenantId"], job["messageId"]
        attempt, holds = int(job.get("attempt", 1)), int(job.get("holds", 0))
        message = self.store.get(tenant_id, message_id)
        if message is None:
            # The job can overtake its record's insert by a moment; after the grace period a
            # missing record means the send failed and was answered 503: drop the job.
            if time.time() - float(job.get("enqueuedAt", 0)) < RECORD_GRACE_SECONDS:
                self._requeue(job, 1)
            return
        waiting = self._pending_media(message)
        if waiting:
            if holds >= self.app.settings.media_hold_max_attempts:
                advance(self.app, tenant_id, message_id, "failed", reason="media_not_ready")
                return
            self._requeue({**job, "holds": holds + 1}, self.app.settings.media_hold_seconds)
            return
        claimed = self.store.claim_attempt(message, attempt)
        if claimed is None:
            return  # delivered, failed, or a duplicate of a job already being handled
        if message.status == "queued":
            notify_status(self.app, claimed)
        media_urls = [str(m["url"]) for m in claimed.media]
        sms = OutboundSms(message_id, tenant_id, claimed.from_number, claimed.to, claimed.body,
                          media_urls)  # fmt: skip
        try:
            result = self.gateway.send(sms)
        except GatewayRejected as rejected:
            advance(self.app, tenant_id, message_id, "failed", reason=rejected.reason)
            return
        except GatewayUnavailable:
            schedule = self.app.settings.delivery_retry_seconds
            if attempt > len(schedule):
                advance(self.app, tenant_id, message_id, "failed", reason="carrier_unavailable")
                return
            log.warning("carrier unavailable for %s; attempt %d retries later", message_id, attempt)
            self._requeue({**job, "attempt": attempt + 1}, schedule[attempt - 1])
            return
        final = "delivered" if result.delivered else "sent"
        advance(
            self.app, tenant_id, message_id, final, via=("sent",),
            CarrierMessageId=result.carrier_message_id,
        )  # fmt: skip

    def _pending_media(self, message: Message) -> list[str]:
        ids = [m["mediaId"] for m in message.media if m.get("mediaId")]
        pending = []
        for media_id in ids:
            record = self.app.media.get({message.tenant_id}, media_id)
            if record is not None and record.optimization_state == "pending":
                pending.append(media_id)
        return pending

    def _requeue(self, job: dict[str, Any], delay: int) -> None:
        self.app.storage.queue(DELIVERY_QUEUE).send_message(
            json.dumps(job), visibility_timeout=delay
        )


def deliver(app: App, body: bytes) -> None:
    """Entry point of the `deliver_message` queue function."""
    Delivery(app, app.gateway).handle(json.loads(body))


def fail_poisoned(app: App, body: bytes) -> None:
    """A delivery job the runtime gave up on (it crashed on every dequeue) ends its message as
    `failed`, visible to GET and the status callback, instead of leaving it `sending`."""
    fields = job_fields(body, "tenantId", "messageId")
    if fields is not None:
        tenant_id, message_id = fields
        advance(app, tenant_id, message_id, "failed", reason="delivery_crashed")
