"""Upload sessions: a client PUTs its file straight into Blob Storage, and the app checks it there.

A session is a row in table `uploadsessions` (partition = media id, so the blob trigger finds it
from the staging blob's name alone) that grants one create-only SAS URL for one staging blob,
`{staging container}/{media id}/{safe file name}`, for `UPLOAD_SESSION_SECONDS` (15 minutes).

States, advanced only with etag conditions: `uploading` -> `ready` (the file passed the upload's
checks and is stored as the media item of the same id) or `uploading` -> `rejected` (the problem
kept for the client). Invariants: a session never leaves `ready` or `rejected`; a media record
with a session's id exists only once the file passed, so `ready` is never reported without one.

Nothing outlives its use: every row has a `RemoveAfter` (an unused session: its expiry plus a
grace for a trigger still running; a rejected one: a day after the rejection, so the client can
read why) and a pointer row in partition `expires-{hour of RemoveAfter}`, written before it (as
in `shared.idempotency`: media ids are hex digits, which sort apart from `expires-`). The storage
sweep reads the pointer partitions of past hours, one range query, and removes each row that is
due by its own `RemoveAfter`, with any staging blob still there; the staging container's
lifecycle rule deletes anything left older than a day, should the sweep fail for that long.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.clock import rfc3339, utc_now
from shared.errors import (
    BadRequest,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.storage import Storage

if TYPE_CHECKING:
    from shared.settings import Settings

SESSIONS_TABLE = "uploadsessions"
EXPIRY_PARTITION = "expires-"
# How long after its URL expired a session still waits for the check of a file PUT just in time.
GRACE = timedelta(minutes=5)
# How long the reason of a rejection stays readable.
REJECTION_KEPT = timedelta(days=1)
# Sessions removed per sweep run (every 15 minutes); what is left waits for the next one.
EXPIRY_BATCH = 2000
log = logging.getLogger(__name__)

UPLOADING, READY, REJECTED = "uploading", "ready", "rejected"


@dataclass(frozen=True)
class UploadSession:
    media_id: str
    tenant_id: str
    phone_number: str
    file_name: str  # as the client named it; the stored name is derived as for any upload
    declared_type: str  # canonical
    blob_name: str  # in the staging container
    created_at: datetime
    expires_at: datetime
    state: str = UPLOADING
    problem: dict[str, Any] | None = None
    etag: str | None = None

    @property
    def remove_after(self) -> datetime:
        return self.expires_at + GRACE

    def expired(self, now: datetime) -> bool:
        """An unused session past its URL's expiry and the grace after it: it ends unused."""
        return self.state == UPLOADING and now > self.remove_after

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "mediaId": self.media_id,
            "state": self.state,
            "fileName": self.file_name,
            "contentType": self.declared_type,
            "expiresAt": rfc3339(self.expires_at),
        }
        return body

    def rejection(self) -> ServiceError:
        """The error the file was refused with, as the upload would have raised it."""
        problem = self.problem or {}
        kind = _REFUSALS.get(int(problem.get("status", 400)), BadRequest)
        errors = problem.get("errors")
        if kind is ValidationFailed and isinstance(errors, list):
            return ValidationFailed(str(problem.get("detail", "")), errors, code=problem["code"])
        extra = {k: v for k, v in problem.items() if k not in _PROBLEM_KEYS}
        return kind(
            str(problem.get("detail", "The file was refused.")),
            code=str(problem.get("code", kind.code)),
            extra=extra,
        )


# What a file can be refused for (the service's own failures are retried, never a rejection).
_REFUSALS: dict[int, type[ServiceError]] = {
    400: ValidationFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}
_PROBLEM_KEYS = frozenset({"type", "title", "status", "detail", "code"})


def _pointer_partition(moment: datetime) -> str:
    return EXPIRY_PARTITION + moment.astimezone(UTC).strftime("%Y%m%dT%H")


class UploadSessions:
    """The session table, and the removal of what unused or finished sessions leave behind."""

    def __init__(
        self, storage: Storage, settings: Settings, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._now = clock

    @property
    def container_name(self) -> str:
        return self._settings.staging_container

    def now(self) -> datetime:
        return self._now()

    def _table(self) -> TableClient:
        return self._storage.table(SESSIONS_TABLE)

    def open(self, session: UploadSession) -> UploadSession:
        """Record a new session (create-only); one recorded earlier under the same media id (a
        retry under the same Idempotency-Key) is returned instead."""
        table = self._table()
        table.upsert_entity(
            {"PartitionKey": _pointer_partition(session.remove_after), "RowKey": session.media_id}
        )
        try:
            written = table.create_entity(_entity(session, session.remove_after))
        except ResourceExistsError:
            earlier = self.get(session.media_id)
            if earlier is None:
                raise
            return earlier
        return replace(session, etag=written["etag"])

    def get(self, media_id: str) -> UploadSession | None:
        try:
            return _session(self._table().get_entity(media_id, "session"))
        except ResourceNotFoundError:
            return None

    def find(self, tenant_ids: frozenset[str] | set[str], media_id: str) -> UploadSession | None:
        """The session if one of `tenant_ids` owns it; another tenant's is none at all."""
        session = self.get(media_id)
        return session if session is not None and session.tenant_id in tenant_ids else None

    def settle(self, session: UploadSession, problem: dict[str, Any] | None = None) -> bool:
        """`uploading` -> `ready` (no problem) or `rejected` (with it), only from the version
        `session` was read at: False when another run settled it first."""
        state = READY if problem is None else REJECTED
        remove_after = session.remove_after
        if problem is not None:
            remove_after = max(remove_after, self._now() + REJECTION_KEPT)
            self._table().upsert_entity(
                {"PartitionKey": _pointer_partition(remove_after), "RowKey": session.media_id}
            )
        settled = replace(session, state=state, problem=problem)
        try:
            self._table().update_entity(
                _entity(settled, remove_after), mode=UpdateMode.REPLACE, etag=session.etag,
                match_condition=MatchConditions.IfNotModified,
            )  # fmt: skip
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def discard_staged(self, blob_name: str) -> None:
        blob = self._storage.blobs.get_blob_client(self.container_name, blob_name)
        with suppress(ResourceNotFoundError):
            blob.delete_blob(delete_snapshots="include")

    def remove_expired(self, *, limit: int = EXPIRY_BATCH) -> int:
        """Delete at most `limit` sessions due for removal (and any staging blob an unused one
        left), found through their pointers; the number of sessions deleted."""
        now = self._now()
        table = self._table()
        due = table.query_entities(
            "PartitionKey ge @first and PartitionKey lt @current",
            parameters={"first": EXPIRY_PARTITION, "current": _pointer_partition(now)},
            select=["PartitionKey", "RowKey"],
            results_per_page=limit,
        )
        removed = seen = 0
        for pointer in islice(due, limit):
            seen += 1
            removed += self._remove_if_due(table, str(pointer["RowKey"]), now)
            table.delete_entity(pointer["PartitionKey"], pointer["RowKey"])
        if seen == limit:
            log.warning("removed %d upload sessions; the next run goes on", removed)
        return removed

    def _remove_if_due(self, table: TableClient, media_id: str, now: datetime) -> bool:
        try:
            entity = table.get_entity(media_id, "session")
        except ResourceNotFoundError:
            return False
        if now <= datetime.fromisoformat(entity["RemoveAfter"]):
            return False  # kept longer since this pointer was written: a later one removes it
        session = _session(entity)
        if session.state == UPLOADING:
            # Unused, or its file never checked (the trigger kept failing): nothing stays.
            self.discard_staged(session.blob_name)
        try:
            table.delete_entity(
                media_id, "session", etag=session.etag,
                match_condition=MatchConditions.IfNotModified,
            )  # fmt: skip
        except (ResourceNotFoundError, ResourceModifiedError):
            return False  # settled meanwhile: its own pointer removes it
        return True


def _entity(session: UploadSession, remove_after: datetime) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": session.media_id,
        "RowKey": "session",
        "TenantId": session.tenant_id,
        "PhoneNumber": session.phone_number,
        "FileName": session.file_name,
        "DeclaredType": session.declared_type,
        "BlobName": session.blob_name,
        "CreatedAt": rfc3339(session.created_at),
        "ExpiresAt": rfc3339(session.expires_at),
        "RemoveAfter": rfc3339(remove_after),
        "State": session.state,
    }
    if session.problem is not None:
        entity["Problem"] = json.dumps(session.problem)
    return entity


def _session(entity: TableEntity) -> UploadSession:
    problem = entity.get("Problem")
    return UploadSession(
        media_id=str(entity["PartitionKey"]),
        tenant_id=str(entity["TenantId"]),
        phone_number=str(entity["PhoneNumber"]),
        file_name=str(entity["FileName"]),
        declared_type=str(entity["DeclaredType"]),
        blob_name=str(entity["BlobName"]),
        created_at=datetime.fromisoformat(entity["CreatedAt"]),
        expires_at=datetime.fromisoformat(entity["ExpiresAt"]),
        state=str(entity["State"]),
        problem=json.loads(problem) if problem else None,
        etag=entity.metadata["etag"],
    )
