"""Accepting a send (validate, store one message per recipient, enqueue one job each) and
delivering one job (hold for pending media, hand to the gateway, retry or fail).

Both converge when a process dies part-way and the work is run again. A send derives its batch
and message ids from its Idempotency-Key's claim (`shared.idempotency`), so a retry after a crash at
any step finds the first run's records and answers with them, never creating a second batch; the
records cannot instead be written atomically with the key's claim (other table, other partition).
A delivery job takes over an attempt whose worker died, and hands the message to the gateway
again under the same Idempotency-Key, so the carrier sees it once (see `MessageDeliveries`)."""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from shared.clock import now_iso
from shared.errors import AlreadyExists, Forbidden
from shared.media.store import MediaStore
from shared.messages import segments
from shared.messages.gateway import (
    CarrierGateway,
    GatewayRejected,
    GatewayUnavailable,
    OutboundSms,
)
from shared.messages.media_urls import CheckedMedia, MediaUrlChecker
from shared.messages.request import SendRequest
from shared.messages.status import MessageStatuses
from shared.messages.store import Message, MessageStore
from shared.settings import Settings
from shared.storage import JobQueue, job_fields

DELIVERY_QUEUE = "deliveries"
RECORD_GRACE_SECONDS = 120
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptedSend:
    """A send as stored: one message per recipient, and its media as checked."""

    messages: list[Message]
    media: list[CheckedMedia]


class NumberOwners(Protocol):
    def number_owner(self, number: str) -> str | None: ...


class CarrierTotals(Protocol):
    def check_total(self, from_number: str, media: Sequence[tuple[int, bool]]) -> None: ...


class Outbox:
    """Accepting sends: validated, stored one message per recipient, one job queued each."""

    def __init__(
        self,
        messages: MessageStore,
        numbers: NumberOwners,
        media_urls: MediaUrlChecker,
        carriers: CarrierTotals,
        jobs: JobQueue,
    ) -> None:
        self._messages = messages
        self._numbers = numbers
        self._media_urls = media_urls
        self._carriers = carriers
        self._jobs = jobs

    def sender_tenant(self, tenant_ids: frozenset[str], from_number: str) -> str:
        """The tenant that owns `from`, which the caller must be allowed to act for."""
        owner = self._numbers.number_owner(from_number)
        if owner is None or owner not in tenant_ids:
            raise Forbidden(
                f"{from_number} is not a number provisioned for a tenant you may act for",
                code="number_not_provisioned",
            )
        return owner

    def accept(self, tenant_id: str, request: SendRequest, seed: str) -> AcceptedSend:
        """Store one message per recipient and queue one job each; the ids derive from `seed`
        (the Idempotency-Key's claim, or a random value without a key), so running this again
        under the same seed finds the batch an earlier run stored, or finishes what it left
        undone."""
        store = self._messages
        ids = [str(uuid.uuid5(uuid.UUID(seed), to)) for to in request.to]
        earlier = store.get(tenant_id, ids[0])
        if earlier is not None:
            log.info("batch %s was stored by an earlier run of this request: answering with it",
                     seed)  # fmt: skip
            return _stored_batch(earlier, request, ids)
        media = self._media_urls.check(tenant_id, request.media_urls)
        self._carriers.check_total(request.from_, [(m.size, m.media_id is not None) for m in media])
        messages = _messages(tenant_id, request, ids, [m.to_json() for m in media], seed, now_iso())
        # Jobs first, records second: the records (at most 100, one tenant, so one atomic entity
        # group transaction) exist only if the whole acceptance succeeded. A job whose record
        # never came (the process died, or storage failed and the client got a 503) is dropped
        # by the worker after a grace period, so an unanswered request leaves neither a message
        # stuck in `queued` nor one delivered unasked; its retry re-queues the jobs (a job is
        # delivered once per attempt however often it is queued) and then stores the records.
        enqueued_at = time.time()
        jobs = [{"tenantId": m.tenant_id, "messageId": m.message_id, "attempt": 1,
                 "enqueuedAt": enqueued_at} for m in messages]  # fmt: skip
        # One queue message per recipient, so a large fan-out spreads across instances.
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            list(pool.map(self._jobs.put, jobs))
        try:
            store.insert_many(messages)
        except AlreadyExists:
            stored = store.get(tenant_id, ids[0])
            if stored is None:
                raise
            log.info("batch %s was stored by a concurrent run of this request", seed)
            return _stored_batch(stored, request, ids)
        return AcceptedSend(messages, media)


def _messages(
    tenant_id: str, request: SendRequest, ids: list[str], media: list[dict[str, Any]],
    batch: str, created: str,
) -> list[Message]:  # fmt: skip
    described = segments.describe(request.body)
    return [
        Message(
            tenant_id=tenant_id,
            message_id=message_id,
            from_number=request.from_,
            to=to,
            body=request.body,
            media=media,
            status="queued",
            history=[{"status": "queued", "at": created}],
            created_at=created,
            segments=int(str(described["segments"])),
            encoding=str(described["encoding"]),
            status_callback=request.status_callback,
            batch_id=batch,
        )
        for message_id, to in zip(ids, request.to, strict=True)
    ]


def _stored_batch(first: Message, request: SendRequest, ids: list[str]) -> AcceptedSend:
    """The acceptance as its first run made it: the batch was stored in one transaction, so its
    first record stands for all, and the media as checked then (not again: the answer must not
    change because an external URL did)."""
    messages = _messages(first.tenant_id, request, ids, first.media, str(first.batch_id),
                         first.created_at)  # fmt: skip
    return AcceptedSend(messages, [CheckedMedia.from_json(m) for m in first.media])


def acceptance_body(accepted: AcceptedSend, body: str) -> dict[str, Any]:
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


class MessageDeliveries:
    """The queue worker's logic for one delivery job (the deliver_message queue trigger).

    A job may run more than once for the same attempt: the queue redelivers it when its worker
    died, or (rarely) while a slow worker still runs. The attempt's claim decides: resolved or
    overtaken, the job has nothing to do; held by a live worker (lease not over), it looks again
    when the lease ends; claimed and never resolved (its worker died between `sending` and the
    status write), it is taken over and the message handed to the gateway again under the same
    Idempotency-Key (the message id), so the carrier sends it once and answers as before."""

    def __init__(
        self,
        messages: MessageStore,
        statuses: MessageStatuses,
        gateway: CarrierGateway,
        media: MediaStore,
        jobs: JobQueue,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = messages
        self.statuses = statuses
        self.gateway = gateway
        self._media = media
        self._jobs = jobs
        self._settings = settings
        self._now = clock

    def with_gateway(
        self, gateway: CarrierGateway, clock: Callable[[], float] | None = None
    ) -> MessageDeliveries:
        """The same worker handing messages to another gateway (tests' fakes)."""
        return MessageDeliveries(self.store, self.statuses, gateway, self._media, self._jobs,
                                 self._settings, clock or self._now)  # fmt: skip

    def handle(self, body: bytes) -> None:
        """One queue message of the deliveries queue."""
        self.run(json.loads(body))

    def run(self, job: dict[str, Any]) -> None:
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
        advance = self.statuses.advance
        if waiting:
            if holds >= self._settings.media_hold_max_attempts:
                advance(tenant_id, message_id, "failed", reason="media_not_ready")
                return
            self._requeue({**job, "holds": holds + 1}, self._settings.media_hold_seconds)
            return
        claimed = self._claim(message, attempt, job)
        if claimed is None:
            return
        self.statuses.notify(claimed)  # once per status: a repeat after a takeover is a no-op
        media_urls = [str(m["url"]) for m in claimed.media]
        sms = OutboundSms(message_id, tenant_id, claimed.from_number, claimed.to, claimed.body,
                          media_urls)  # fmt: skip
        try:
            receipt = self.gateway.send(sms)
        except GatewayRejected as rejected:
            advance(tenant_id, message_id, "failed", reason=rejected.reason)
            return
        except GatewayUnavailable:
            schedule = self._settings.delivery_retry_seconds
            if attempt > len(schedule):
                advance(tenant_id, message_id, "failed", reason="carrier_unavailable")
                return
            log.warning("carrier unavailable for %s; attempt %d retries later", message_id, attempt)
            self._requeue({**job, "attempt": attempt + 1}, schedule[attempt - 1])
            return
        final = "delivered" if receipt.delivered else "sent"
        advance(tenant_id, message_id, final, via=("sent",),
                carrier_message_id=receipt.carrier_message_id)  # fmt: skip

    def _claim(self, message: Message, attempt: int, job: dict[str, Any]) -> Message | None:
        """This job's hold on `attempt`, or None (after saying why) when it has nothing to do."""
        now, message_id = self._now(), message.message_id
        if message.status == "sending" and message.attempts == attempt:
            held = (message.claim_expires or 0.0) - now
            if held > 0:
                log.info(
                    "message %s attempt %d is held by another worker for %.0f s; looking then",
                    message_id, attempt, held,
                )  # fmt: skip
                self._requeue(job, math.ceil(held))
                return None
            log.warning(
                "message %s attempt %d was claimed and never resolved (its worker died); "
                "handing it to the gateway again under the same Idempotency-Key",
                message_id, attempt,
            )  # fmt: skip
        lease = self._settings.delivery_claim_lease_seconds
        claimed = self.store.claim_attempt(message, attempt, now=now, lease=lease)
        if claimed is None:
            log.info(
                "message %s is %s at attempt %d: the job for attempt %d has nothing to do",
                message_id, message.status, message.attempts, attempt,
            )  # fmt: skip
            self.statuses.notify(message)  # a callback lost in a crash after the status write
        return claimed

    def _pending_media(self, message: Message) -> list[str]:
        ids = [m["mediaId"] for m in message.media if m.get("mediaId")]
        pending = []
        for media_id in ids:
            record = self._media.get({message.tenant_id}, media_id)
            if record is not None and record.optimization_state == "pending":
                pending.append(media_id)
        return pending

    def _requeue(self, job: dict[str, Any], delay: int) -> None:
        self._jobs.put(job, delay=delay)

    def fail_poisoned(self, body: bytes) -> None:
        """A delivery job the runtime gave up on (it crashed on every dequeue) ends its message
        as `failed`, visible to GET and the status callback, instead of leaving it `sending`."""
        fields = job_fields(body, "tenantId", "messageId")
        if fields is not None:
            tenant_id, message_id = fields
            self.statuses.advance(tenant_id, message_id, "failed", reason="delivery_crashed")
