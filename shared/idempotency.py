"""Idempotency keys: a repeated request with the same key and body gets the first response for
24 hours and does nothing twice; the same key with another body is 422.

A small storage abstraction with a conditional write: the first request claims the key with an
insert (which fails for everyone else), runs, then stores its response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import azure.functions as func
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

from shared.errors import Conflict, Unprocessable, ValidationFailed
from shared.storage import Storage

TABLE = "idempotency"
TTL = timedelta(hours=24)
# A claim still in progress after this long was abandoned (its request died with storage down, so
# it could not release the key): longer than Azure's 230 s HTTP limit, so no live request has it.
IN_PROGRESS_LEASE = timedelta(minutes=5)
_REPLAYED_HEADERS = ("Location",)


def _valid_key(key: str) -> str:
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise ValidationFailed.field(
            "Idempotency-Key", "must be 1 to 255 printable ASCII characters"
        )
    return key


class Idempotency:
    def __init__(self, storage: Storage, clock: Callable[[], datetime] | None = None) -> None:
        self._storage = storage
        self._now = clock or (lambda: datetime.now(UTC))

    def run(
        self,
        scope: str,
        key: str | None,
        body: bytes,
        produce: Callable[[], func.HttpResponse],
    ) -> func.HttpResponse:
        """`produce` the response once per (scope, key, body); replay it afterwards."""
        if key is None:
            return produce()
        table = self._storage.table(TABLE)
        partition = hashlib.sha256(scope.encode()).hexdigest()
        row = hashlib.sha256(_valid_key(key).encode()).hexdigest()
        fingerprint = hashlib.sha256(body).hexdigest()
        claim: dict[str, object] = {
            "PartitionKey": partition,
            "RowKey": row,
            "Fingerprint": fingerprint,
            "State": "in_progress",
            "CreatedAt": self._now().isoformat(),
        }
        try:
            table.create_entity(claim)
        except ResourceExistsError:
            replay = self._existing(table, claim, fingerprint)
            if replay is not None:
                return replay
        try:
            response = produce()
        except BaseException:
            table.delete_entity(partition, row)
            raise
        if response.status_code >= 500:
            table.delete_entity(partition, row)
            return response
        claim.update(
            State="done",
            Status=response.status_code,
            Body=(response.get_body() or b"").decode(),
            MimeType=response.mimetype or "application/json",
            Headers=json.dumps(
                {h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}
            ),
        )
        table.upsert_entity(claim)
        return response

    def _existing(
        self, table: TableClient, claim: dict[str, object], fingerprint: str
    ) -> func.HttpResponse | None:
        """The stored response to replay, or None when an expired or abandoned claim was taken
        over."""
        try:
            entity = table.get_entity(str(claim["PartitionKey"]), str(claim["RowKey"]))
        except ResourceNotFoundError:
            table.create_entity(claim)  # vanished meanwhile: claim it
            return None
        age = self._now() - datetime.fromisoformat(entity["CreatedAt"])
        if age > TTL or (entity["State"] != "done" and age > IN_PROGRESS_LEASE):
            table.update_entity(
                claim, etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )
            return None
        if entity["Fingerprint"] != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was already used with a different request body.",
                code="idempotency_key_reused",
            )
        if entity["State"] != "done":
            raise Conflict(
                "A request with this Idempotency-Key is still in progress; retry shortly.",
                code="idempotency_in_progress",
                headers={"Retry-After": "1"},
            )
        headers = json.loads(entity.get("Headers") or "{}")
        headers["Idempotent-Replayed"] = "true"
        return func.HttpResponse(
            entity["Body"],
            status_code=int(entity["Status"]),
            headers=headers,
            mimetype=entity["MimeType"],
            charset="utf-8",
        )
