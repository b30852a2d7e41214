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
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import azure.functions as func
from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from shared.clock import rfc3339
from shared.errors import ServiceError, Unprocessable, ValidationFailed
from shared.storage import Storage

TABLE = "idempotency"
TTL = timedelta(hours=24)
EXPIRY_PARTITION = "expires-"
# Expired claims removed per sweep run (every 15 minutes); what is left waits for the next one.
EXPIRY_BATCH = 2000
_REPLAYED_HEADERS = ("Location",)
log = logging.getLogger(__name__)


def _valid_key(key: str) -> str:
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise ValidationFailed.field(
            "Idempotency-Key", "must be 1 to 255 printable ASCII characters"
        )
    return key


def _expiry_partition(expires: datetime) -> str:
    """The pointer partition of the hour `expires` falls in (sorted as written)."""
    return EXPIRY_PARTITION + expires.astimezone(UTC).strftime("%Y%m%dT%H")


def _seed(claim: Mapping[str, Any]) -> str:
    """32 hex digits, the same for every run under this claim, new when the key is claimed anew."""
    text = f"{claim['PartitionKey']}/{claim['RowKey']}/{claim['CreatedAt']}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Idempotency:
    def __init__(self, storage: Storage, clock: Callable[[], datetime] | None = None) -> None:
        self._storage = storage
        self._now = clock or (lambda: datetime.now(UTC))

    def run(
        self,
        scope: str,
        key: str | None,
        body: bytes,
        produce: Callable[[str | None], func.HttpResponse],
    ) -> func.HttpResponse:
        """`produce(seed)` the response once per (scope, key, body); replay it afterwards.
        `produce` must derive what it creates from `seed` (32 hex digits) and create it
        create-only, so that running it again under the same seed converges on one result;
        without a key the seed is None (no run will repeat this one)."""
        if key is None:
            return produce(None)
        table = self._storage.table(TABLE)
        claimed_at = self._now()
        claim: dict[str, Any] = {
            "PartitionKey": hashlib.sha256(scope.encode()).hexdigest(),
            "RowKey": hashlib.sha256(_valid_key(key).encode()).hexdigest(),
            "Fingerprint": hashlib.sha256(body).hexdigest(),
            "State": "in_progress",
            "CreatedAt": rfc3339(claimed_at),
        }
        table.upsert_entity(
            {
                "PartitionKey": _expiry_partition(claimed_at + TTL),
                "RowKey": f"{claim['PartitionKey']}-{claim['RowKey']}",
            }
        )
        current, etag = self._claim(table, claim)
        if current["Fingerprint"] != claim["Fingerprint"]:
            raise Unprocessable(
                "This Idempotency-Key was already used with a different request body.",
                code="idempotency_key_reused",
            )
        if current["State"] == "done":
            return _replay(current)
        if current is not claim:
            log.info("an earlier request with this Idempotency-Key did not finish: resuming it")
        try:
            response = produce(_seed(current))
        except ServiceError as error:
            if error.status < 500:  # refused before anything was stored: the key stays free
                with suppress(ResourceNotFoundError, ResourceModifiedError):
                    table.delete_entity(
                        current["PartitionKey"], current["RowKey"],
                        etag=etag, match_condition=MatchConditions.IfNotModified,
                    )  # fmt: skip
            raise
        if response.status_code >= 500:
            return response
        done = {
            **{k: current[k] for k in ("PartitionKey", "RowKey", "Fingerprint", "CreatedAt")},
            "State": "done",
            "Status": response.status_code,
            "Body": (response.get_body() or b"").decode(),
            "MimeType": response.mimetype or "application/json",
            "Headers": json.dumps(
                {h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}
            ),
        }
        try:
            table.update_entity(
                done, mode=UpdateMode.REPLACE, etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )  # fmt: skip
        except (ResourceModifiedError, ResourceNotFoundError):
            # Another run under this claim answered first: its response is the key's answer.
            with suppress(ResourceNotFoundError):
                stored = table.get_entity(current["PartitionKey"], current["RowKey"])
                if stored["State"] == "done" and stored["Fingerprint"] == claim["Fingerprint"]:
                    return _replay(stored)
        return response

    def _claim(self, table: TableClient, claim: dict[str, Any]) -> tuple[Mapping[str, Any], str]:
        """The claim this request runs under, with its etag: `claim` itself when the key was free
        or its earlier claim expired, else the earlier claim (finished or not)."""
        try:
            return claim, table.create_entity(claim)["etag"]
        except ResourceExistsError:
            pass
        try:
            entity = table.get_entity(claim["PartitionKey"], claim["RowKey"])
        except ResourceNotFoundError:  # released meanwhile: claim it
            return claim, table.create_entity(claim)["etag"]
        if self._now() - datetime.fromisoformat(entity["CreatedAt"]) > TTL:
            written = table.update_entity(
                claim, mode=UpdateMode.REPLACE, etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )  # fmt: skip
            return claim, written["etag"]
        return entity, str(entity.metadata["etag"])

    def remove_expired(self, *, limit: int = EXPIRY_BATCH) -> int:
        """Delete at most `limit` claims (finished or not) older than the replay window, found
        through their pointers; the number of claims deleted."""
        now = self._now()
        table = self._storage.table(TABLE)
        due = table.query_entities(
            "PartitionKey ge @first and PartitionKey lt @current",
            parameters={"first": EXPIRY_PARTITION, "current": _expiry_partition(now)},
            select=["PartitionKey", "RowKey"],
            results_per_page=limit,
        )
        removed = seen = 0
        for pointer in islice(due, limit):
            seen += 1
            partition, _, row = str(pointer["RowKey"]).partition("-")
            removed += self._remove_if_expired(table, partition, row, now)
            table.delete_entity(pointer["PartitionKey"], pointer["RowKey"])
        if seen == limit:
            log.warning("removed %d expired idempotency claims; the next run goes on", removed)
        return removed

    @staticmethod
    def _remove_if_expired(table: TableClient, partition: str, row: str, now: datetime) -> bool:
        try:
            claim = table.get_entity(partition, row)
            if now - datetime.fromisoformat(claim["CreatedAt"]) <= TTL:
                return False  # claimed anew since this pointer was written
            table.delete_entity(
                partition, row, etag=claim.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )  # fmt: skip
        except (ResourceNotFoundError, ResourceModifiedError):
            return False  # released, or claimed anew meanwhile
        return True


def _replay(entity: Mapping[str, Any]) -> func.HttpResponse:
    headers = json.loads(entity.get("Headers") or "{}")
    headers["Idempotent-Replayed"] = "true"
    return func.HttpResponse(
        entity["Body"],
        status_code=int(entity["Status"]),
        headers=headers,
        mimetype=entity["MimeType"],
        charset="utf-8",
    )
