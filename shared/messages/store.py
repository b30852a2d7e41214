"""Outbound message records (table `messages`, partition = tenant) and their status machine.

Status only moves forward, `queued -> sending -> sent -> delivered | undelivered | failed` (a
real carrier's "undelivered": accepted, then not delivered to the handset), and every change is
an etag-conditional update, so duplicate or out-of-order events (a late carrier callback, a
re-delivered queue message) can never move a message backwards.

A delivery attempt is claimed with a lease (`ClaimExpires`, epoch seconds): while it runs no other
job may claim the same attempt; once it has run out with the message still `sending`, the worker
that held it died before the outcome was written, and the next job for that attempt takes it over
and resolves it (the gateway dedupes the repeated hand-over by its Idempotency-Key).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.clock import now_iso
from shared.errors import ChangedMeanwhile
from shared.tables import JsonText, Table, TenantScoped, key_also_named

TABLE = "messages"
RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
TERMINAL = frozenset({"delivered", "undelivered", "failed"})
_CONFLICT_RETRIES = 5
MAX_BATCH = 100  # Table Storage's limit for one entity-group transaction


class Message(TenantScoped):
    """One outbound message: a row of `messages`, partition = tenant id, row = message id."""

    partition_key: str = key_also_named("tenant_id", "PartitionKey")
    row_key: str = key_also_named("message_id", "RowKey")
    direction: str = "outbound"
    from_number: str = Field(alias="From")
    to: str
    body: str = ""
    media: JsonText[list[dict[str, Any]]] = Field(default_factory=list)
    status: str
    history: JsonText[list[dict[str, Any]]] = Field(default_factory=list)
    created_at: str
    segments: int = 0
    encoding: str = ""
    attempts: int = 0
    failure_reason: str | None = None
    carrier_message_id: str | None = None
    status_callback: str | None = None
    batch_id: str | None = None
    claim_expires: float | None = None

    @property
    def message_id(self) -> str:
        return self.row_key

    def to_api(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "direction": "outbound",
            "from": self.from_number,
            "to": self.to,
            "body": self.body,
            "mediaUrls": [m["url"] for m in self.media],
            "status": self.status,
            "statusHistory": self.history,
            "failureReason": self.failure_reason,
            "carrierMessageId": self.carrier_message_id,
            "segments": self.segments,
            "encoding": self.encoding,
            "createdAt": self.created_at,
        }


class MessageStore:
    def __init__(self, table: Table[Message]) -> None:
        self._table = table

    def insert_many(self, messages: list[Message]) -> None:
        """All or nothing: one entity-group transaction (one tenant, at most 100 rows); none is
        written, and `AlreadyExists` raised, when any of them exists already."""
        if len({m.tenant_id for m in messages}) > 1 or len(messages) > MAX_BATCH:
            raise ValueError(f"one transaction holds at most {MAX_BATCH} rows of one tenant")
        self._table.transact(("create", m) for m in messages)

    def get(self, tenant_id: str, message_id: str) -> Message | None:
        return self._table.get(tenant_id, message_id)

    def find(self, tenant_ids: frozenset[str] | set[str], message_id: str) -> Message | None:
        for tenant_id in sorted(tenant_ids):
            message = self.get(tenant_id, message_id)
            if message is not None:
                return message
        return None

    def claim_attempt(
        self, message: Message, attempt: int, *, now: float, lease: float
    ) -> Message | None:
        """Move to `sending` for delivery attempt `attempt` (1-based), held until `now + lease`.
        Only one worker at a time holds an attempt: a duplicate queue message gets None while the
        attempt is held, resolved or overtaken; an attempt whose lease ran out unresolved is taken
        over."""
        if message.status in TERMINAL or message.status == "sent" or message.attempts > attempt:
            return None
        if message.attempts == attempt and (message.claim_expires or 0.0) > now:
            return None
        changes: dict[str, Any] = {"attempts": attempt, "claim_expires": now + lease}
        if message.status == "queued":
            changes.update(self._status_change(message, "sending"))
        try:
            return self._table.update(message.changed(**changes))
        except ChangedMeanwhile:
            return None

    def transition(
        self, tenant_id: str, message_id: str, status: str, *, reason: str | None = None,
        via: tuple[str, ...] = (), carrier_message_id: str | None = None,
    ) -> Message | None:  # fmt: skip
        """Move forward to `status` (recording the `via` statuses passed on the way, and the
        carrier's id when given); a move backwards or sideways is ignored (returns None)."""
        for _ in range(_CONFLICT_RETRIES):
            message = self.get(tenant_id, message_id)
            if message is None or RANK[status] <= RANK[message.status]:
                return None
            passed = [s for s in via if RANK[message.status] < RANK[s] < RANK[status]]
            changes = self._status_change(message, status, reason, passed)
            if carrier_message_id is not None:
                changes["carrier_message_id"] = carrier_message_id
            try:
                return self._table.update(message.changed(**changes))
            except ChangedMeanwhile:
                continue
        return None

    def _status_change(
        self, message: Message, status: str, reason: str | None = None, via: list[str] | None = None
    ) -> dict[str, Any]:
        at = now_iso()
        entry: dict[str, Any] = {"status": status, "at": at}
        if reason:
            entry["reason"] = reason
        passed = [{"status": s, "at": at} for s in via or []]
        changes: dict[str, Any] = {"status": status, "history": [*message.history, *passed, entry]}
        if reason:
            changes["failure_reason"] = reason
        return changes
