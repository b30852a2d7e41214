"""Durable webhook deliveries: a row per webhook in `webhookdeliveries` (partition = tenant id,
row = webhook id) holding the exact body sent on every try, and one queue message per try.

Each try is a queue message carrying a one-off ticket. A worker first claims the row with an etag
(state `sending`), so duplicate queue messages never send twice; a failed try records itself and
queues the next try with a visibility delay from the schedule (with jitter), under a new ticket.
A message that finds the row `sending` (a duplicate, or its worker died before recording) comes
back when the claim turns stale (`stale_claim_seconds`), and then takes it over if it must.
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
import math
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pydantic import Field

from shared.clock import now_iso, rfc3339, utc_now
from shared.errors import ChangedMeanwhile, Conflict, NotFound
from shared.outbound import OutboundClient, OutboundRefused, Reason
from shared.storage import JobQueue, job_fields
from shared.tables import JsonText, Table, TenantScoped, key_also_named, retry_on_change
from shared.tenancy import Tenant
from shared.webhooks.dead_letters import DeadLetter, DeadLetters
from shared.webhooks.schedule import retry_delay
from shared.webhooks.signing import sign_headers

log = logging.getLogger(__name__)

TABLE = "webhookdeliveries"
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


@dataclass(frozen=True)
class WebhookTarget:
    """Where a webhook goes: by default the tenant's endpoint, read afresh at every try (so URL
    changes and disabling apply to queued retries); `url` pins the endpoint instead (a
    per-message status callback). Either way the tenant's current secrets sign every try."""

    tenant_id: str
    url: str | None = None


class WebhookDelivery(TenantScoped):
    """One webhook's row: what is sent, where, and how its tries went."""

    partition_key: str = key_also_named("tenant_id", "PartitionKey")
    row_key: str = key_also_named("webhook_id", "RowKey")
    event_type: str = ""
    payload: str = ""
    url: str = ""  # empty: the tenant's endpoint at each try
    state: State = State.PENDING
    reason: str = ""
    ticket: str = ""  # the one queue message that may make the next try
    attempt: int = 0
    round_number: int = Field(default=1, alias="Round")  # redelivery starts a new round
    history: JsonText[list[dict[str, Any]]] = Field(default_factory=list)
    created_at: str = ""
    next_attempt_at: str = ""
    claimed_at: str | None = None
    delivered_at: str | None = None

    @property
    def webhook_id(self) -> str:
        return self.row_key

    def claim_age(self, now: datetime) -> float:
        """Seconds since a worker claimed the current try (very large when never claimed)."""
        claimed = datetime.fromisoformat(self.claimed_at or "1970-01-01T00:00:00+00:00")
        return (now - claimed).total_seconds()

    def to_api(self) -> dict[str, Any]:
        waiting = self.state == State.PENDING
        return {
            "webhookId": self.webhook_id,
            "eventType": self.event_type,
            "state": str(self.state),
            "reason": self.reason or None,
            "createdAt": self.created_at,
            "deliveredAt": self.delivered_at or None,
            "nextAttemptAt": (self.next_attempt_at or None) if waiting else None,
            "attempts": self.history,
        }


class Endpoints(Protocol):
    """What deliveries need of the tenant directory: the tenant's endpoint and secrets now."""

    def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    def disable_webhook(self, tenant_id: str) -> None: ...


@dataclass(frozen=True)
class _Outcome:
    state: State  # DELIVERED, PENDING (try again) or DEAD
    status: int | None = None
    error: str | None = None
    reason: str | None = None


def webhook_id_for(key: str) -> str:
    """A stable id for one logical event, so recording it twice queues it once."""
    return "msg_" + uuid.uuid5(_ID_NAMESPACE, key).hex


def keyed_webhook_id(event_type: str, idempotency_key: str) -> str:
    """The `webhook-id` `enqueue` gives the webhook of `event_type` under `idempotency_key`."""
    return webhook_id_for(f"{event_type}:{idempotency_key}")


class WebhookDeliveries:
    """Recording webhooks, making their tries (the deliver_webhook queue trigger), and the
    operators' redelivery."""

    def __init__(
        self,
        deliveries: Table[WebhookDelivery],
        dead_letters: DeadLetters,
        queue: JobQueue,
        endpoints: Endpoints,
        outbound: OutboundClient,
        *,
        retry_schedule: Sequence[int],
        retry_jitter: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._rows = deliveries
        self.dead_letters = dead_letters
        self._queue = queue
        self._endpoints = endpoints
        self._outbound = outbound
        self._schedule = tuple(retry_schedule)
        self._jitter = retry_jitter
        self._now = clock

    def enqueue(
        self,
        target: WebhookTarget,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> WebhookDelivery:
        """Record a webhook and queue its first try. With `idempotency_key`, the same key gives
        the same `webhook-id` and is queued once however often it is enqueued."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        if len(body) > MAX_PAYLOAD_CHARS:
            raise ValueError(f"webhook payload over {MAX_PAYLOAD_CHARS} characters")
        webhook_id = (
            keyed_webhook_id(event_type, idempotency_key)
            if idempotency_key
            else "msg_" + uuid.uuid4().hex
        )
        tenant = self._endpoints.get_tenant(target.tenant_id) if target.url is None else None
        no_endpoint = target.url is None and (tenant is None or not tenant.webhook_url)
        now = now_iso()
        row = WebhookDelivery(
            tenant_id=target.tenant_id,
            webhook_id=webhook_id,
            event_type=event_type,
            payload=body,
            url=target.url or "",
            state=State.SKIPPED if no_endpoint else State.PENDING,
            reason="no_endpoint" if no_endpoint else "",
            ticket=secrets.token_hex(8),
            created_at=now,
            next_attempt_at="" if no_endpoint else now,
        )
        try:
            self._rows.insert(row)
        except Conflict:
            existing = self._rows.get(target.tenant_id, webhook_id)
            if existing is None:
                raise
            if existing.state == State.PENDING and existing.attempt == 0:
                # Recorded but perhaps never queued (a crash in between): queue it again; a
                # duplicate message carries the same ticket and loses the claim.
                self._queue_try(existing, existing.ticket, 1, 0)
            return existing
        if not no_endpoint:
            self._queue_try(row, row.ticket, 1, 0)
        return row

    def _queue_try(self, row: WebhookDelivery, ticket: str, attempt: int, delay: int) -> None:
        job = {"tenantId": row.tenant_id, "webhookId": row.webhook_id, "ticket": ticket,
               "attempt": attempt}  # fmt: skip
        self._queue.put(job, delay=delay)

    def get(self, tenant_id: str, webhook_id: str) -> WebhookDelivery | None:
        return self._rows.get(tenant_id, webhook_id)

    def view(self, tenant_id: str, webhook_id: str) -> dict[str, Any] | None:
        delivery = self.get(tenant_id, webhook_id)
        return delivery.to_api() if delivery else None

    def stale_claim_seconds(self) -> float:
        """How old a `sending` claim must be to be taken over: longer than any try can take."""
        return stale_claim_seconds(self._outbound)

    def handle(self, message: bytes) -> None:
        """Make the one try a queue message stands for (the deliver_webhook queue trigger)."""
        fields = job_fields(message, "tenantId", "webhookId", "ticket", "attempt")
        if fields is None or not fields[3].isdigit():
            return
        tenant_id, webhook_id, ticket, attempt = *fields[:3], int(fields[3])
        row = self._rows.get(tenant_id, webhook_id)
        if row is None:
            log.warning("webhook %s has no delivery record; dropping its message", webhook_id)
            return
        if row.state in FINAL:
            return
        if row.state == State.SENDING:
            # Another worker claimed a try: it is recording now, or it died. Look again once the
            # claim is stale; the row then says whether this message still has a try to make.
            left = self.stale_claim_seconds() - row.claim_age(self._now())
            if left >= 0:
                job = {"tenantId": tenant_id, "webhookId": webhook_id, "ticket": ticket,
                       "attempt": attempt}  # fmt: skip
                self._queue.put(job, delay=math.ceil(left) + 1)
                return
        if row.ticket != ticket:
            return  # a message for a try already made
        at = now_iso()
        try:
            claimed = self._rows.update(
                row.changed(state=State.SENDING, claimed_at=at, attempt=attempt)
            )
        except ChangedMeanwhile:
            return  # another worker claimed this try
        started = time.monotonic()
        outcome = self._attempt(claimed)
        entry = {
            "attempt": attempt,
            "round": claimed.round_number,
            "at": at,
            "status": outcome.status,
            "error": outcome.error,
            "durationMs": round((time.monotonic() - started) * 1000),
        }
        self._record(claimed, outcome, attempt, [*claimed.history, entry])

    def _attempt(self, row: WebhookDelivery) -> _Outcome:
        url = row.url
        tenant = self._endpoints.get_tenant(row.tenant_id)
        if not url:
            if tenant is None or not tenant.webhook_url:
                return _Outcome(
                    State.DEAD, error="no webhook URL is configured", reason="no_endpoint"
                )
            if tenant.webhook_disabled:
                return _Outcome(
                    State.DEAD, error="the endpoint is disabled", reason="endpoint_disabled"
                )
            url = tenant.webhook_url
        signing = tenant.webhook_secrets if tenant else ()
        if not signing:
            return _Outcome(State.DEAD, error="no signing secret", reason="no_signing_secret")
        headers = sign_headers(row.webhook_id, datetime.now(UTC), row.payload, signing)
        try:
            posted = self._outbound.post_json(
                url, row.payload.encode(), headers=headers, max_response_bytes=1024
            )
        except OutboundRefused as exc:
            if exc.reason in PERMANENT_REFUSALS:
                return _Outcome(State.DEAD, error=exc.message, reason=str(exc.reason))
            return _Outcome(State.PENDING, error=exc.message)
        if 200 <= posted.status < 300:
            return _Outcome(State.DELIVERED, status=posted.status)
        if posted.status == 410:
            if not row.url:
                # The receiver says the endpoint is gone for good: stop sending the tenant
                # anything until its URL is set again (`webhook-set`).
                self._endpoints.disable_webhook(row.tenant_id)
            return _Outcome(
                State.DEAD, status=410, error="the endpoint answered 410 Gone",
                reason="endpoint_gone",
            )  # fmt: skip
        return _Outcome(State.PENDING, status=posted.status, error=f"HTTP {posted.status}")

    def _record(
        self, row: WebhookDelivery, outcome: _Outcome, attempt: int, history: list[dict[str, Any]]
    ) -> None:
        changes: dict[str, Any] = {"history": history}
        state, reason = outcome.state, outcome.reason
        if state == State.PENDING:
            delay = retry_delay(self._schedule, attempt, self._jitter)
            if delay is None:
                state, reason = State.DEAD, "retries_exhausted"
            else:
                ticket = secrets.token_hex(8)
                # Queue first: if recording then fails, this message finds the old ticket and the
                # redelivered current message retakes the stale claim, so no try is lost.
                self._queue_try(row, ticket, attempt + 1, delay)
                next_at = datetime.now(UTC) + timedelta(seconds=delay)
                changes.update(ticket=ticket, next_attempt_at=rfc3339(next_at))
        if state == State.DEAD:
            self._dead_letter(row, reason or "failed", history)
        if state == State.DELIVERED:
            changes["delivered_at"] = now_iso()
        changes.update(state=state, reason=reason or "")
        try:
            self._rows.update(row.changed(**changes))
        except ChangedMeanwhile:
            log.warning("webhook %s was retaken while its try was recorded", row.webhook_id)

    def _dead_letter(
        self, row: WebhookDelivery, reason: str, history: list[dict[str, Any]]
    ) -> None:
        last = history[-1] if history else {}
        self.dead_letters.add(
            DeadLetter(
                tenant_id=row.tenant_id,
                webhook_id=row.webhook_id,
                event_type=row.event_type,
                reason=reason,
                attempts=sum(1 for h in history if h.get("round") == row.round_number),
                last_status=last.get("status") or 0,
                last_error=str(last.get("error") or ""),
                dead_at=now_iso(),
            )
        )
        log.warning("webhook %s dead-lettered: %s", row.webhook_id, reason)

    def dead_letter_poisoned(self, message: bytes) -> None:
        """A try the runtime gave up on (the worker crashed on every dequeue) is dead-lettered,
        so it is listed and can be redelivered with the admin CLI instead of silently
        stopping."""
        fields = job_fields(message, "tenantId", "webhookId")
        if fields is None:
            return

        def give_up() -> None:
            row = self._rows.get(*fields)
            if row is None or row.state in FINAL:
                return
            self._dead_letter(row, "worker_crashed", row.history)
            self._rows.update(row.changed(state=State.DEAD, reason="worker_crashed"))

        retry_on_change(give_up)

    def retry_now(self, tenant_id: str, webhook_id: str) -> WebhookDelivery:
        """Bring a pending delivery's next try forward to now (operators: `webhook-redeliver`).

        The immediate message is that same try: it carries the delivery's current ticket and
        attempt number, so whichever of it and the scheduled message comes first makes the try
        and the other finds the ticket used (or the delivery final) and does nothing. The row is
        touched with an etag condition first, so the ticket queued is the one current then."""
        row = self._rows.get(tenant_id, webhook_id)
        if row is None:
            raise NotFound(f"webhook {webhook_id} not found", code="webhook_not_found")
        if row.state != State.PENDING:
            raise Conflict(
                f"webhook {webhook_id} is {row.state}, not waiting for a retry",
                code="webhook_not_pending",
            )
        try:
            touched = self._rows.update(row.changed(next_attempt_at=now_iso()))
        except ChangedMeanwhile:
            raise Conflict(
                f"webhook {webhook_id} is being tried right now", code="webhook_not_pending"
            ) from None
        self._queue_try(touched, touched.ticket, touched.attempt + 1, 0)
        return touched

    def redeliver(self, webhook_id: str, tenant_id: str | None = None) -> dict[str, Any]:
        """Send a webhook again now. A dead letter is queued again (a fresh round of the retry
        schedule) and removed; a delivery waiting for its next retry has that try made now, and
        the scheduled message then finds it done. `tenant_id` saves a search of the
        deliveries. A concurrent change of the row is read again and the round restarted on it;
        one that keeps changing answers 409 `concurrent_update`."""
        letter = self.dead_letters.find(webhook_id, tenant_id)
        if letter is None:
            tenant = tenant_id or self._delivery_tenant(webhook_id)
            return self.retry_now(tenant, webhook_id).to_api()

        def restart() -> WebhookDelivery:
            row = self._rows.get(letter.tenant_id, webhook_id)
            if row is None:
                raise NotFound(f"webhook {webhook_id} not found", code="webhook_not_found")
            fresh = row.changed(
                state=State.PENDING, reason="", ticket=secrets.token_hex(8), attempt=0,
                round_number=row.round_number + 1, next_attempt_at=now_iso(),
            )  # fmt: skip
            return self._rows.update(fresh)

        restarted = retry_on_change(restart)
        self._queue_try(restarted, restarted.ticket, 1, 0)
        self.dead_letters.remove(letter)
        return restarted.to_api()

    def _delivery_tenant(self, webhook_id: str) -> str:
        # Without the tenant this reads every partition: fine for an operator's occasional
        # command.
        for row in self._rows.query("RowKey eq @id", {"id": webhook_id}):
            return row.tenant_id
        raise NotFound(f"webhook {webhook_id} not found", code="webhook_not_found")


def stale_claim_seconds(outbound: OutboundClient) -> float:
    """How old a `sending` claim must be to be taken over: longer than any try can take. A try's
    message that comes back sooner finds the claim live and is queued again to look then."""
    return outbound.total_timeout + 15
