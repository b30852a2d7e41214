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

import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, PlainSerializer

from shared.clock import rfc3339, utc_now
from shared.errors import (
    AlreadyExists,
    BadRequest,
    ChangedMeanwhile,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.storage import Storage, storage_errors
from shared.tables import JsonText, Row, Table, key_also_named

if TYPE_CHECKING:
    from shared.settings import Settings

SESSIONS_TABLE = "uploadsessions"
EXPIRY_PARTITION = "expires-"
SESSION_ROW = "session"
# How long after its URL expired a session still waits for the check of a file PUT just in time.
GRACE = timedelta(minutes=5)
# How long the reason of a rejection stays readable.
REJECTION_KEPT = timedelta(days=1)
# Sessions removed per sweep run (every 15 minutes); what is left waits for the next one.
EXPIRY_BATCH = 2000
log = logging.getLogger(__name__)

# Stored as RFC 3339 text, as every timestamp here (shared.clock).
Moment = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]

UPLOADING, READY, REJECTED = "uploading", "ready", "rejected"


class UploadSession(Row):
    """partition = media id, row = `session`."""

    partition_key: str = key_also_named("media_id", "PartitionKey")
    row_key: str = SESSION_ROW
    tenant_id: str
    phone_number: str
    file_name: str  # as the client named it; the stored name is derived as for any upload
    declared_type: str  # canonical
    blob_name: str  # in the staging container
    created_at: Moment
    expires_at: Moment
    state: str = UPLOADING
    problem: JsonText[dict[str, Any] | None] = None
    # When the sweep may remove the row: `remove_after`, later for a rejection (kept readable).
    removal_due: Moment | None = Field(default=None, alias="RemoveAfter")

    @property
    def media_id(self) -> str:
        return self.partition_key

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


class SessionPointer(Row):
    """partition = `expires-{hour}`, row = the media id of a session due for removal then."""


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
        self._sessions = Table.of(storage, SESSIONS_TABLE, UploadSession)
        self._pointers = Table.of(storage, SESSIONS_TABLE, SessionPointer)

    @property
    def container_name(self) -> str:
        return self._settings.staging_container

    def now(self) -> datetime:
        return self._now()

    def _point(self, media_id: str, due: datetime) -> None:
        self._pointers.upsert(
            SessionPointer(partition_key=_pointer_partition(due), row_key=media_id)
        )

    def open(self, session: UploadSession) -> UploadSession:
        """Record a new session (create-only); one recorded earlier under the same media id (a
        retry under the same Idempotency-Key) is returned instead."""
        self._point(session.media_id, session.remove_after)
        try:
            return self._sessions.insert(session.changed(removal_due=session.remove_after))
        except AlreadyExists:
            earlier = self.get(session.media_id)
            if earlier is None:
                raise
            return earlier

    def get(self, media_id: str) -> UploadSession | None:
        return self._sessions.get(media_id, SESSION_ROW)

    def find(self, tenant_ids: frozenset[str] | set[str], media_id: str) -> UploadSession | None:
        """The session if one of `tenant_ids` owns it; another tenant's is none at all."""
        session = self.get(media_id)
        return session if session is not None and session.tenant_id in tenant_ids else None

    def settle(self, session: UploadSession, problem: dict[str, Any] | None = None) -> bool:
        """`uploading` -> `ready` (no problem) or `rejected` (with it), only from the version
        `session` was read at: False when another run settled it first."""
        state = READY if problem is None else REJECTED
        due = session.removal_due or session.remove_after
        if problem is not None:
            due = max(due, self._now() + REJECTION_KEPT)
            self._point(session.media_id, due)
        try:
            self._sessions.update(session.changed(state=state, problem=problem, removal_due=due))
        except ChangedMeanwhile:
            return False
        return True

    def discard_staged(self, blob_name: str) -> None:
        blob = self._storage.blobs.get_blob_client(self.container_name, blob_name)
        with suppress(ChangedMeanwhile), storage_errors():  # already gone: fine
            blob.delete_blob(delete_snapshots="include")

    def remove_expired(self, *, limit: int = EXPIRY_BATCH) -> int:
        """Delete at most `limit` sessions due for removal (and any staging blob an unused one
        left), found through their pointers; the number of sessions deleted."""
        now = self._now()
        due = self._pointers.keys_between(EXPIRY_PARTITION, _pointer_partition(now), limit=limit)
        removed = seen = 0
        for pointer in islice(due, limit):
            seen += 1
            removed += self._remove_if_due(pointer.row_key, now)
            self._pointers.delete(pointer.partition_key, pointer.row_key)
        if seen == limit:
            log.warning("removed %d upload sessions; the next run goes on", removed)
        return removed

    def _remove_if_due(self, media_id: str, now: datetime) -> bool:
        session = self.get(media_id)
        if session is None:
            return False
        if now <= (session.removal_due or session.remove_after):
            return False  # kept longer since this pointer was written: a later one removes it
        if session.state == UPLOADING:
            # Unused, or its file never checked (the trigger kept failing): nothing stays.
            self.discard_staged(session.blob_name)
        try:
            self._sessions.delete(media_id, SESSION_ROW, etag=session.etag)
        except ChangedMeanwhile:
            return False  # settled meanwhile: its own pointer removes it
        return True
