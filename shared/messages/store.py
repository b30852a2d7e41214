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

import json
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableErrorCode, TableTransactionError

from shared.clock import now_iso
from shared.storage import Storage

TABLE = "messages"
RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
TERMINAL = frozenset({"delivered", "undelivered", "failed"})
_CONFLICT_RETRIES = 5
MAX_BATCH = 100  # Table Storage's limit for one entity-group transaction


@dataclass(frozen=True)
class Message:
    tenant_id: str
    message_id: str
    from_number: str
    to: str
    body: str
    media: list[dict[str, Any]]
    status: str
    history: list[dict[str, Any]]
    created_at: str
    segments: int
    encoding: str
    attempts: int = 0
    failure_reason: str | None = None
    carrier_message_id: str | None = None
    status_callback: str | None = None
    batch_id: str | None = None
    claim_expires: float | None = None
    etag: str = field(default="", compare=False)

    @classmethod
    def from_entity(cls, e: dict[str, Any]) -> Message:
        return cls(
            tenant_id=e["PartitionKey"],
            message_id=e["RowKey"],
            from_number=e["From"],
            to=e["To"],
            body=e.get("Body", ""),
            media=json.loads(e.get("Media") or "[]"),
            status=e["Status"],
            history=json.loads(e.get("History") or "[]"),
            created_at=e["CreatedAt"],
            segments=int(e.get("Segments", 0)),
            encoding=e.get("Encoding", ""),
            attempts=int(e.get("Attempts", 0)),
            failure_reason=e.get("FailureReason"),
            carrier_message_id=e.get("CarrierMessageId"),
            status_callback=e.get("StatusCallback"),
            batch_id=e.get("BatchId"),
            claim_expires=e.get("ClaimExpires"),
            etag=e.metadata["etag"] if hasattr(e, "metadata") else "",  # plain dicts: no etag
        )

    def to_entity(self) -> dict[str, Any]:
        entity = {
            "PartitionKey": self.tenant_id,
            "RowKey": self.message_id,
            "Direction": "outbound",
            "From": self.from_number,
            "To": self.to,
            "Body": self.body,
            "Media": json.dumps(self.media),
            "Status": self.status,
            "History": json.dumps(self.history),
            "CreatedAt": self.created_at,
            "Segments": self.segments,
            "Encoding": self.encoding,
            "Attempts": self.attempts,
            "FailureReason": self.failure_reason,
            "CarrierMessageId": self.carrier_message_id,
            "StatusCallback": self.status_callback,
            "BatchId": self.batch_id,
            "ClaimExpires": self.claim_expires,
        }
        return {k: v for k, v in entity.items() if v is not None}

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
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def _table(self) -> Any:
        return self._storage.table(TABLE)

    def insert_many(self, messages: list[Message]) -> None:
        """All or nothing: one entity-group transaction (one tenant, at most 100 rows); none is
        written, and ResourceExistsError raised, when any of them exists already."""
        if len({m.tenant_id for m in messages}) > 1 or len(messages) > MAX_BATCH:
            raise ValueError(f"one transaction holds at most {MAX_BATCH} rows of one tenant")
        try:
            self._table().submit_transaction([("create", m.to_entity()) for m in messages])
        except TableTransactionError as error:
            if getattr(error, "error_code", None) == TableErrorCode.ENTITY_ALREADY_EXISTS:
                raise ResourceExistsError(error.message) from error
            raise

    def get(self, tenant_id: str, message_id: str) -> Message | None:
        try:
            return Message.from_entity(self._table().get_entity(tenant_id, message_id))
        except ResourceNotFoundError:
            return None

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
        changes: dict[str, Any] = {"Attempts": attempt, "ClaimExpires": now + lease}
        if message.status == "queued":
            changes.update(self._status_change(message, "sending"))
        try:
            return self._write(message, changes)
        except ResourceModifiedError:
            return None

    def transition(
        self, tenant_id: str, message_id: str, status: str, *, reason: str | None = None,
        via: tuple[str, ...] = (), **extra: Any,
    ) -> Message | None:  # fmt: skip
        """Move forward to `status` (recording the `via` statuses passed on the way); a move
        backwards or sideways is ignored (returns None)."""
        for _ in range(_CONFLICT_RETRIES):
            message = self.get(tenant_id, message_id)
            if message is None or RANK[status] <= RANK[message.status]:
                return None
            passed = [s for s in via if RANK[message.status] < RANK[s] < RANK[status]]
            changes = self._status_change(message, status, reason, passed)
            changes.update(extra)
            try:
                return self._write(message, changes)
            except ResourceModifiedError:
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
        changes: dict[str, Any] = {
            "Status": status,
            "History": json.dumps([*message.history, *passed, entry]),
        }
        if reason:
            changes["FailureReason"] = reason
        return changes

    def _write(self, message: Message, changes: dict[str, Any]) -> Message:
        entity = {"PartitionKey": message.tenant_id, "RowKey": message.message_id, **changes}
        written = self._table().update_entity(
            entity, etag=message.etag, match_condition=MatchConditions.IfNotModified
        )
        merged = {**message.to_entity(), **changes}
        updated = Message.from_entity(merged)
        return replace(updated, etag=written["etag"])
