"""Durable webhook deliveries: a row per webhook in `webhookdeliveries` (partition = tenant id,
row = webhook id) holding the exact body sent on every try, and one queue message per try.

Each try is a queue message carrying a one-off ticket. A worker first claims the row with an etag
(state `sending`), so duplicate queue messages never send twice; a failed try records itself and
queues the next try with a visibility delay from the schedule (with jitter), under a new ticket.
After the last try, or a permanent failure (410, an address the SSRF guard refuses), the delivery
is dead-lettered (`shared.webhooks.dead_letters`). The `webhook-id` is the same on every try; the
timestamp and signatures are made fresh for each, as Standard Webhooks expects.

A row holds no secret: every try is signed with the tenant's signing secrets as they are at that
moment, so a rotation (and `--drop-previous`) reaches retries already queued. Rows written before
this rule may still carry a `Secrets` copy; it is never read.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.app import App
from shared.clock import now_iso, rfc3339
from shared.errors import Conflict, NotFound
from shared.outbound import OutboundRefused, Reason
from shared.storage import job_fields
from shared.webhooks.schedule import retry_delay
from shared.webhooks.signing import sign_headers

log = logging.getLogger(__name__)

DELIVERIES = "webhookdeliveries"
DEAD_LETTERS = "webhookdeadletters"
# A table string property holds 64 KiB of UTF-16; payloads are far smaller than this.
MAX_PAYLOAD_CHARS = 30_000
# Refusals no retry can cure: the URL itself is unacceptable.
PERMANENT_REFUSALS = frozenset(
    {
        Reason.INVALID_URL,
        Reason.SCHEME_NOT_ALLOWED,
        Reason.CREDENTIALS_IN_URL,
        Reason.URL_TOO_LONG,
        Reason.ADDRESS_FORBIDDEN,
        Reason.REDIRECT_REFUSED,
    }
)
_ID_NAMESPACE = uuid.UUID("6f1d7c1e-4a53-4f0e-9a5e-3b0f1f1d2c10")


class State(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"
    SKIPPED = "skipped"  # the tenant has no webhook URL: recorded, nothing to send


FINAL = frozenset({State.DELIVERED, State.DEAD, State.SKIPPED})


class DeliveryBusy(RuntimeError):
    """Another try of this delivery is being recorded; the runtime retries this message later."""


@dataclass(frozen=True)
class WebhookTarget:
    """Where a webhook goes: by default the tenant's endpoint, read afresh at every try (so URL
    changes and disabling apply to queued retries); `url` pins the endpoint instead (a
    per-message status callback). Either way the tenant's current secrets sign every try."""

    tenant_id: str
    url: str | None = None


@dataclass(frozen=True)
class Delivery:
    tenant_id: str
    webhook_id: str
    event_type: str
    state: str
    attempts: list[dict[str, Any]]
    reason: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    created_at: str

    @classmethod
    def from_entity(cls, e: Mapping[str, Any]) -> Delivery:
        return cls(
            tenant_id=str(e["PartitionKey"]),
            webhook_id=str(e["RowKey"]),
            event_type=str(e.get("EventType", "")),
            state=str(e.get("State", "")),
            attempts=json.loads(str(e.get("History") or "[]")),
            reason=str(e.get("Reason") or "") or None,
            next_attempt_at=str(e.get("NextAttemptAt") or "") or None,
            delivered_at=str(e.get("DeliveredAt") or "") or None,
            created_at=str(e.get("CreatedAt", "")),
        )

    def to_api(self) -> dict[str, Any]:
        return {
            "webhookId": self.webhook_id,
            "eventType": self.event_type,
            "state": self.state,
            "reason": self.reason,
            "createdAt": self.created_at,
            "deliveredAt": self.delivered_at,
            "nextAttemptAt": self.next_attempt_at if self.state == State.PENDING else None,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class _Outcome:
    state: State  # DELIVERED, PENDING (try again) or DEAD
    status: int | None = None
    error: str | None = None
    reason: str | None = None


def webhook_id_for(key: str) -> str:
    """A stable id for one logical event, so recording it twice queues it once."""
    return "msg_" + uuid.uuid5(_ID_NAMESPACE, key).hex


def enqueue_webhook(
    app: App,
    target: WebhookTarget,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
) -> Delivery:
    """Record a webhook and queue its first try. With `idempotency_key`, the same key gives the
    same `webhook-id` and is queued once however often it is enqueued."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if len(body) > MAX_PAYLOAD_CHARS:
        raise ValueError(f"webhook payload over {MAX_PAYLOAD_CHARS} characters")
    webhook_id = (
        webhook_id_for(f"{event_type}:{idempotency_key}")
        if idempotency_key
        else "msg_" + uuid.uuid4().hex
    )
    tenant = app.directory.get_tenant(target.tenant_id) if target.url is None else None
    no_endpoint = target.url is None and (tenant is None or not tenant.webhook_url)
    entity: dict[str, Any] = {
        "PartitionKey": target.tenant_id,
        "RowKey": webhook_id,
        "EventType": event_type,
        "Payload": body,
        "Url": target.url or "",
        "State": State.SKIPPED if no_endpoint else State.PENDING,
        "Reason": "no_endpoint" if no_endpoint else "",
        "Ticket": secrets.token_hex(8),
        "Attempt": 0,
        "Round": 1,
        "History": "[]",
        "CreatedAt": now_iso(),
        "NextAttemptAt": "" if no_endpoint else now_iso(),
    }
    table = app.storage.table(DELIVERIES)
    try:
        table.create_entity(entity)
    except ResourceExistsError:
        existing = table.get_entity(target.tenant_id, webhook_id)
        if existing.get("State") == State.PENDING and int(existing.get("Attempt", 0)) == 0:
            # Recorded but perhaps never queued (a crash in between): queue it again; a
            # duplicate message carries the same ticket and loses the claim.
            queue_try(app, target.tenant_id, webhook_id, str(existing["Ticket"]), 1, 0)
        return Delivery.from_entity(existing)
    if not no_endpoint:
        queue_try(app, target.tenant_id, webhook_id, entity["Ticket"], 1, 0)
    return Delivery.from_entity(entity)


def queue_try(
    app: App, tenant_id: str, webhook_id: str, ticket: str, attempt: int, delay: int
) -> None:
    message = {"tenantId": tenant_id, "webhookId": webhook_id, "ticket": ticket, "attempt": attempt}
    app.storage.queue(app.settings.webhook_queue).send_message(
        json.dumps(message), visibility_timeout=delay or None
    )


def get_delivery(app: App, tenant_id: str, webhook_id: str) -> Delivery | None:
    try:
        return Delivery.from_entity(app.storage.table(DELIVERIES).get_entity(tenant_id, webhook_id))
    except ResourceNotFoundError:
        return None


def delivery_view(app: App, tenant_id: str, webhook_id: str) -> dict[str, Any] | None:
    delivery = get_delivery(app, tenant_id, webhook_id)
    return delivery.to_api() if delivery else None


def retry_now(app: App, tenant_id: str, webhook_id: str) -> Delivery:
    """Bring a pending delivery's next try forward to now (operators: `webhook-redeliver`).

    The immediate message is that same try: it carries the delivery's current ticket and
    attempt number, so whichever of it and the scheduled message comes first makes the try and
    the other finds the ticket used (or the delivery final) and does nothing. The row is touched
    with an etag condition first, so the ticket queued is the one current at that moment."""
    table = app.storage.table(DELIVERIES)
    try:
        row = table.get_entity(tenant_id, webhook_id)
    except ResourceNotFoundError:
        raise NotFound(f"webhook {webhook_id} not found", code="webhook_not_found") from None
    if row["State"] != State.PENDING:
        raise Conflict(
            f"webhook {webhook_id} is {row['State']}, not waiting for a retry",
            code="webhook_not_pending",
        )
    try:
        table.update_entity(
            {"PartitionKey": tenant_id, "RowKey": webhook_id, "NextAttemptAt": now_iso()},
            mode=UpdateMode.MERGE,
            etag=row.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        raise Conflict(
            f"webhook {webhook_id} is being tried right now", code="webhook_not_pending"
        ) from None
    queue_try(app, tenant_id, webhook_id, str(row["Ticket"]), int(row.get("Attempt", 0)) + 1, 0)
    delivery = get_delivery(app, tenant_id, webhook_id)
    assert delivery is not None
    return delivery


def deliver(app: App, message: bytes) -> None:
    """Make the one try a queue message stands for (the deliver_webhook queue trigger)."""
    fields = job_fields(message, "tenantId", "webhookId", "ticket", "attempt")
    if fields is None or not fields[3].isdigit():
        return
    tenant_id, webhook_id, ticket, attempt = *fields[:3], int(fields[3])
    table = app.storage.table(DELIVERIES)
    try:
        row = table.get_entity(tenant_id, webhook_id)
    except ResourceNotFoundError:
        log.warning("webhook %s has no delivery record; dropping its message", webhook_id)
        return
    state = State(row["State"])
    if state in FINAL:
        return
    if row["Ticket"] != ticket:
        if state == State.SENDING:
            raise DeliveryBusy(f"webhook {webhook_id} is being recorded; retry later")
        return  # a message for a try already made
    if state == State.SENDING and not _claim_is_stale(app, row):
        return  # a duplicate of the message being worked on now
    claim = {"PartitionKey": tenant_id, "RowKey": webhook_id, "State": State.SENDING,
             "ClaimedAt": now_iso(), "Attempt": attempt}  # fmt: skip
    try:
        meta = table.update_entity(
            claim,
            mode=UpdateMode.MERGE,
            etag=row.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        return  # another worker claimed this try
    started = time.monotonic()
    outcome = _attempt(app, row, webhook_id)
    entry = {
        "attempt": attempt,
        "round": int(row.get("Round", 1)),
        "at": claim["ClaimedAt"],
        "status": outcome.status,
        "error": outcome.error,
        "durationMs": round((time.monotonic() - started) * 1000),
    }
    history = [*json.loads(str(row.get("History") or "[]")), entry]
    _record(app, table, row, meta["etag"], outcome, attempt, history)


def stale_claim_seconds(app: App) -> float:
    """How old a `sending` claim must be to be taken over: longer than any try can take. A try's
    message that comes back sooner (its worker died) finds the claim live and is dropped, so the
    queue's redelivery lease must be longer: in Azure it is the host's 10 minutes; a local host
    run with a shorter `--queue-lease` must keep it above this."""
    return app.outbound.total_timeout + 15


def _claim_is_stale(app: App, row: Mapping[str, Any]) -> bool:
    """A `sending` claim older than any try can take was left by a worker that died."""
    claimed = datetime.fromisoformat(str(row.get("ClaimedAt") or "1970-01-01T00:00:00+00:00"))
    return datetime.now(UTC) - claimed > timedelta(seconds=stale_claim_seconds(app))


def _attempt(app: App, row: Mapping[str, Any], webhook_id: str) -> _Outcome:
    url = str(row.get("Url") or "")
    tenant = app.directory.get_tenant(str(row["PartitionKey"]))
    if not url:
        if tenant is None or not tenant.webhook_url:
            return _Outcome(State.DEAD, error="no webhook URL is configured", reason="no_endpoint")
        if tenant.webhook_disabled:
            return _Outcome(
                State.DEAD, error="the endpoint is disabled", reason="endpoint_disabled"
            )
        url = tenant.webhook_url
    signing = tenant.webhook_secrets if tenant else ()
    if not signing:
        return _Outcome(State.DEAD, error="no signing secret", reason="no_signing_secret")
    body = str(row["Payload"])
    headers = sign_headers(webhook_id, datetime.now(UTC), body, signing)
    try:
        posted = app.outbound.post_json(
            url, body.encode(), headers=headers, max_response_bytes=1024
        )
    except OutboundRefused as exc:
        if exc.reason in PERMANENT_REFUSALS:
            return _Outcome(State.DEAD, error=exc.message, reason=str(exc.reason))
        return _Outcome(State.PENDING, error=exc.message)
    if 200 <= posted.status < 300:
        return _Outcome(State.DELIVERED, status=posted.status)
    if posted.status == 410:
        if not row.get("Url"):
            # The receiver says the endpoint is gone for good: stop sending the tenant anything
            # until its URL is set again (`webhook-set`).
            app.directory.disable_webhook(str(row["PartitionKey"]))
        return _Outcome(
            State.DEAD, status=410, error="the endpoint answered 410 Gone", reason="endpoint_gone"
        )
    return _Outcome(State.PENDING, status=posted.status, error=f"HTTP {posted.status}")


def _record(
    app: App,
    table: TableClient,
    row: Mapping[str, Any],
    etag: str,
    outcome: _Outcome,
    attempt: int,
    history: list[dict[str, Any]],
) -> None:
    tenant_id, webhook_id = str(row["PartitionKey"]), str(row["RowKey"])
    update: dict[str, Any] = {"PartitionKey": tenant_id, "RowKey": webhook_id,
                              "History": json.dumps(history)}  # fmt: skip
    state, reason = outcome.state, outcome.reason
    if state == State.PENDING:
        settings = app.settings
        delay = retry_delay(
            settings.webhook_retry_schedule_seconds, attempt, settings.webhook_retry_jitter
        )
        if delay is None:
            state, reason = State.DEAD, "retries_exhausted"
        else:
            ticket = secrets.token_hex(8)
            # Queue first: if recording then fails, this message finds the old ticket and the
            # redelivered current message retakes the stale claim, so no try is lost.
            queue_try(app, tenant_id, webhook_id, ticket, attempt + 1, delay)
            next_at = datetime.now(UTC) + timedelta(seconds=delay)
            update.update(Ticket=ticket, NextAttemptAt=rfc3339(next_at))
    if state == State.DEAD:
        _dead_letter(app, row, reason or "failed", history)
    if state == State.DELIVERED:
        update["DeliveredAt"] = now_iso()
    update.update(State=state, Reason=reason or "")
    try:
        table.update_entity(
            update, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
    except ResourceModifiedError:
        log.warning("webhook %s was retaken while its try was recorded", webhook_id)


def _dead_letter(
    app: App, row: Mapping[str, Any], reason: str, history: list[dict[str, Any]]
) -> None:
    last = history[-1] if history else {}
    app.storage.table(DEAD_LETTERS).upsert_entity(
        {
            "PartitionKey": str(row["PartitionKey"]),
            "RowKey": str(row["RowKey"]),
            "EventType": str(row.get("EventType", "")),
            "Reason": reason,
            "Attempts": sum(1 for h in history if h.get("round") == int(row.get("Round", 1))),
            "LastStatus": last.get("status") or 0,
            "LastError": str(last.get("error") or ""),
            "DeadAt": now_iso(),
        }
    )
    log.warning("webhook %s dead-lettered: %s", row["RowKey"], reason)


def dead_letter_poisoned(app: App, message: bytes) -> None:
    """A try the runtime gave up on (the worker crashed on every dequeue) is dead-lettered, so it
    is listed and can be redelivered with the admin CLI instead of silently stopping."""
    fields = job_fields(message, "tenantId", "webhookId")
    if fields is None:
        return
    tenant_id, webhook_id = fields
    table = app.storage.table(DELIVERIES)
    try:
        row = table.get_entity(tenant_id, webhook_id)
    except ResourceNotFoundError:
        return
    if State(row["State"]) in FINAL:
        return
    history = json.loads(str(row.get("History") or "[]"))
    _dead_letter(app, row, "worker_crashed", history)
    table.update_entity(
        {"PartitionKey": tenant_id, "RowKey": webhook_id, "State": State.DEAD,
         "Reason": "worker_crashed"},
        mode=UpdateMode.MERGE,
    )  # fmt: skip
