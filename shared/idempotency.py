"""Idempotency keys: a repeated request with the same key and body gets the first response for
24 hours and does nothing twice; the same key with another body is 422.

A small storage abstraction with a conditional write: the first request claims the key with an
insert (which fails for everyone else), runs, then stores its response.

A process can die at any instruction between the claim and the stored response, after some or all
of its work was written. So the work converges instead of being undone: each claim has a `seed`,
fixed for its life (derived from the claim), and `produce` derives the ids of everything it creates
from it (batch and message ids, media ids) and writes them create-only. A request that finds the
claim unfinished does not wait for it: it runs `produce` again with the same seed, which finds the
first run's records and answers with them, or writes whatever is missing; two runs at once (a
client retrying a slow request) meet at the same create-only writes, one wins, and both answer
with the winner's records. The first response stored wins; the other run replays it. Writing the
claim in the same atomic batch as the records instead is not possible here: a table transaction
holds one partition of one table, and the records live in other tables and partitions.

A request refused with a 4xx error (raised before anything is stored) releases its key; one that
failed on the server (5xx, a crash, storage down) keeps its unfinished claim, so its retry finishes
the same work rather than starting another.

Claims expire 24 hours after they were made and are then removed, response bodies with them, by
the storage sweep. A claim lives in partition sha256(scope), row sha256(key): found by a point
read, but no query can find the old ones without reading the whole table. So before a claim is
written, a pointer row to it goes into partition `expires-{hour}` of the same table, the hour
(UTC) in which the claim will have expired; claim partitions are hex digests, which sort apart
from `expires-`. `remove_expired` reads the pointer partitions of the hours already past (one
range query on the partition key, at most a batch per run) and deletes each claim that is
expired by its own `CreatedAt` (the key may have been claimed anew since: that claim has a
pointer of its own) with an etag condition, then the pointer. A process dying between pointer
and claim leaves a pointer to nothing, removed in its turn; never a claim without a pointer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from pydantic import Field

from shared.clock import rfc3339
from shared.errors import (
    AlreadyExists,
    ChangedMeanwhile,
    ServiceError,
    Unprocessable,
    ValidationFailed,
)
from shared.storage import Storage
from shared.tables import JsonText, Row, Table, retry_on_change

TABLE = "idempotency"
TTL = timedelta(hours=24)
EXPIRY_PARTITION = "expires-"
# Expired claims removed per sweep run (every 15 minutes); what is left waits for the next one.
EXPIRY_BATCH = 2000
_REPLAYED_HEADERS = ("Location",)
log = logging.getLogger(__name__)


class Response(Protocol):
    """What `run` reads of the response it stores (an `azure.functions.HttpResponse`)."""

    @property
    def status_code(self) -> int: ...

    @property
    def mimetype(self) -> str | None: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def get_body(self) -> bytes: ...


A = TypeVar("A", bound=Response)


@dataclass(frozen=True)
class StoredAnswer:
    """A stored response as it is replayed (its headers include `Idempotent-Replayed`)."""

    status: int
    body: str
    mimetype: str
    headers: dict[str, str]


class Claim(Row):
    """Partition: sha256(scope); row: sha256(key). `state` in_progress | done; a done claim
    holds the response (`status`, `body`, `mime_type`, the replayed `headers`)."""

    fingerprint: str
    state: str
    created_at: str
    status: int | None = None
    body: str | None = None
    mime_type: str | None = None
    headers: JsonText[dict[str, str]] = Field(default_factory=dict)

    @property
    def seed(self) -> str:
        """32 hex digits, the same for every run under this claim, new when the key is claimed
        anew."""
        text = f"{self.partition_key}/{self.row_key}/{self.created_at}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def expired(self, now: datetime) -> bool:
        return now - datetime.fromisoformat(self.created_at) > TTL

    def answer(self) -> StoredAnswer:
        headers = {**self.headers, "Idempotent-Replayed": "true"}
        return StoredAnswer(int(self.status or 0), self.body or "", self.mime_type or "", headers)


class ExpiryPointer(Row):
    """Partition: `expires-{hour}`; row: `{claim partition}-{claim row}`."""

    @property
    def claim_keys(self) -> tuple[str, str]:
        partition, _, row = self.row_key.partition("-")
        return partition, row


def _valid_key(key: str) -> str:
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise ValidationFailed.field(
            "Idempotency-Key", "must be 1 to 255 printable ASCII characters"
        )
    return key


def _expiry_partition(expires: datetime) -> str:
    """The pointer partition of the hour `expires` falls in (sorted as written)."""
    return EXPIRY_PARTITION + expires.astimezone(UTC).strftime("%Y%m%dT%H")


class Idempotency[A: Response]:
    """The `idempotency` table; `replay` turns a stored answer back into a response."""

    def __init__(
        self,
        storage: Storage,
        clock: Callable[[], datetime] | None = None,
        *,
        replay: Callable[[StoredAnswer], A],
    ) -> None:
        self._claims = Table.of(storage, TABLE, Claim)
        self._pointers = Table.of(storage, TABLE, ExpiryPointer)
        self._now = clock or (lambda: datetime.now(UTC))
        self._replay = replay

    def run(
        self, scope: str, key: str | None, body: bytes, produce: Callable[[str | None], A]
    ) -> A:
        """`produce(seed)` the response once per (scope, key, body); replay it afterwards.
        `produce` must derive what it creates from `seed` (32 hex digits) and create it
        create-only, so that running it again under the same seed converges on one result;
        without a key the seed is None (no run will repeat this one)."""
        if key is None:
            return produce(None)
        claimed_at = self._now()
        claim = Claim(
            partition_key=hashlib.sha256(scope.encode()).hexdigest(),
            row_key=hashlib.sha256(_valid_key(key).encode()).hexdigest(),
            fingerprint=hashlib.sha256(body).hexdigest(),
            state="in_progress",
            created_at=rfc3339(claimed_at),
        )
        self._pointers.upsert(
            ExpiryPointer(
                partition_key=_expiry_partition(claimed_at + TTL),
                row_key=f"{claim.partition_key}-{claim.row_key}",
            )
        )
        current, fresh = self._claim(claim)
        if current.fingerprint != claim.fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was already used with a different request body.",
                code="idempotency_key_reused",
            )
        if current.state == "done":
            return self._replay(current.answer())
        if not fresh:
            log.info("an earlier request with this Idempotency-Key did not finish: resuming it")
        try:
            response = produce(current.seed)
        except ServiceError as error:
            if error.status < 500:  # refused before anything was stored: the key stays free
                with suppress(ChangedMeanwhile):
                    self._claims.delete(current.partition_key, current.row_key, etag=current.etag)
            raise
        if response.status_code >= 500:
            return response
        done = current.changed(
            state="done",
            status=response.status_code,
            body=(response.get_body() or b"").decode(),
            mime_type=response.mimetype or "application/json",
            headers={h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers},
        )
        try:
            self._claims.update(done)
        except ChangedMeanwhile:
            # Another run under this claim answered first: its response is the key's answer.
            stored = self._claims.get(current.partition_key, current.row_key)
            if stored and stored.state == "done" and stored.fingerprint == claim.fingerprint:
                return self._replay(stored.answer())
        return response

    def _claim(self, claim: Claim) -> tuple[Claim, bool]:
        """The claim this request runs under (with its etag), and whether it is `claim` itself:
        the key was free or its earlier claim expired; else the earlier claim (finished or not).
        Claims released or made meanwhile are read again; after repeated losses,
        `ChangedMeanwhile` (409)."""

        def attempt() -> tuple[Claim, bool]:
            try:
                return self._claims.insert(claim), True
            except AlreadyExists:
                current = self._claims.get(claim.partition_key, claim.row_key)
            if current is None:
                raise ChangedMeanwhile()  # released meanwhile: claim it
            if current.expired(self._now()):
                return self._claims.update(claim.model_copy(update={"etag": current.etag})), True
            return current, False

        return retry_on_change(attempt)

    def remove_expired(self, *, limit: int = EXPIRY_BATCH) -> int:
        """Delete at most `limit` claims (finished or not) older than the replay window, found
        through their pointers; the number of claims deleted."""
        now = self._now()
        due = self._pointers.keys_between(EXPIRY_PARTITION, _expiry_partition(now), limit=limit)
        removed = seen = 0
        for pointer in due:
            seen += 1
            removed += self._remove_if_expired(*pointer.claim_keys, now)
            self._pointers.delete(pointer.partition_key, pointer.row_key)
        if seen == limit:
            log.warning("removed %d expired idempotency claims; the next run goes on", removed)
        return removed

    def _remove_if_expired(self, partition: str, row: str, now: datetime) -> bool:
        claim = self._claims.get(partition, row)
        if claim is None or not claim.expired(now):
            return False  # released, or claimed anew since this pointer was written
        try:
            self._claims.delete(partition, row, etag=claim.etag)
        except ChangedMeanwhile:
            return False  # claimed anew meanwhile
        return True
