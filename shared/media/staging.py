"""Direct uploads: opening a session with its write-once URL, and checking what arrives.

The URL is a service SAS for exactly one blob of the private staging container, with the create
permission only (`sp=c`: a new blob, never an overwrite, no read, list or delete), valid for the
session's lifetime; storage itself refuses a PUT after that, or to any other blob name.

When the blob arrives (its blob-created event in Azure, polling on the local host) it is checked
exactly as an upload is, by the one ingest service (`Ingest.store`, under the session's media id):
size first (from the blob's length, the upload's 413 text), then sniffing (415), HEIC conversion;
then it is stored as `attachments/{mediaId}/{name}` with its record and 99-year URL, the session
becomes `ready` and the staging blob is deleted. A refused file is deleted and its session
`rejected`, with the problem the upload would have answered. A failure of the service's own
(storage, the signing key) raises, so the runtime tries again; the session is left as it was.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from azure.storage.blob import BlobSasPermissions, generate_blob_sas

from shared.errors import NotConfigured, ServiceError
from shared.media.filenames import sanitise
from shared.media.ingest import Ingest
from shared.media.sessions import UPLOADING, UploadSession, UploadSessions
from shared.media.upload_request import too_large
from shared.storage import Storage

if TYPE_CHECKING:
    from shared.settings import Settings

# What a client must send with its PUT (a Put Blob call needs the blob type).
REQUIRED_HEADERS = {"x-ms-blob-type": "BlockBlob"}
_MEDIA_ID = re.compile(r"^[0-9a-f]{32}$")
log = logging.getLogger(__name__)


class StagedBlob(Protocol):
    """What the blob trigger delivers (an `azure.functions.blob.InputStream`)."""

    @property
    def name(self) -> str | None: ...

    @property
    def length(self) -> int | None: ...

    def read(self, size: int = -1, /) -> bytes: ...


class Staging:
    """Issues session URLs and receives what is PUT to them."""

    def __init__(
        self, storage: Storage, settings: Settings, sessions: UploadSessions, ingest: Ingest
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._sessions = sessions
        self._ingest = ingest

    def open(
        self,
        *,
        tenant_id: str,
        phone_number: str,
        file_name: str,
        declared_type: str,
        media_id: str | None = None,
    ) -> tuple[UploadSession, str]:
        """A new session (or the one opened earlier under the same `media_id`) and its URL."""
        if self._storage.account_key is None:
            raise NotConfigured(
                "Upload URLs cannot be signed: no signing key is configured.",
                code="media_not_configured",
            )
        media_id = media_id or secrets.token_hex(16)
        now = self._sessions.now()
        session = self._sessions.open(
            UploadSession(
                media_id=media_id,
                tenant_id=tenant_id,
                phone_number=phone_number,
                file_name=file_name,
                declared_type=declared_type,
                blob_name=f"{media_id}/{sanitise(file_name)}",
                created_at=now,
                expires_at=now + timedelta(seconds=self._settings.upload_session_seconds),
            )
        )
        return session, self._upload_url(session)

    def _upload_url(self, session: UploadSession) -> str:
        container = self._storage.container(self._settings.staging_container)
        blob = container.get_blob_client(session.blob_name)
        token = generate_blob_sas(
            account_name=self._storage.account_name,
            container_name=self._settings.staging_container,
            blob_name=session.blob_name,
            account_key=self._storage.account_key,
            permission=BlobSasPermissions(create=True),
            expiry=session.expires_at,
            protocol=None if self._storage.is_emulator else "https",
        )
        return f"{blob.url}?{token}"

    def receive(self, blob: StagedBlob) -> None:
        """Check one staging blob and settle its session; a blob no session expects is removed."""
        _, _, name = (blob.name or "").partition("/")
        media_id, _, _ = name.partition("/")
        session = self._sessions.get(media_id) if _MEDIA_ID.match(media_id) else None
        if session is None or session.blob_name != name:
            log.warning("removing staging blob %s: no upload session expects it", name)
            self._sessions.discard_staged(name)
            return
        if session.state == UPLOADING:
            self._check(session, blob)
        self._sessions.discard_staged(name)

    def _check(self, session: UploadSession, blob: StagedBlob) -> None:
        limit = self._settings.max_media_bytes
        problem: dict[str, Any] | None = None
        try:
            if (blob.length or 0) > limit:
                raise too_large()
            data = blob.read(limit + 1)
            if len(data) > limit:
                raise too_large()
            self._ingest.store(
                tenant_id=session.tenant_id,
                phone_number=session.phone_number,
                file_name=session.file_name,
                declared_type=session.declared_type,
                data=data,
                media_id=session.media_id,
            )
        except ServiceError as error:
            if error.status >= 500:
                raise  # the service's own failure: the runtime tries again
            problem = refusal_of(error)
            log.info("upload %s rejected: %s", session.media_id, error.detail)
        if not self._sessions.settle(session, problem):
            log.info("upload %s was settled by another run", session.media_id)


def refusal_of(error: ServiceError) -> dict[str, Any]:
    """What the session keeps of a refusal: enough to raise it again (`rejection`)."""
    return {
        "status": error.status, "title": error.title, "detail": error.detail,
        "code": error.code, **error.extra,
    }  # fmt: skip
