"""Media blobs and their records, and the revocable long-lived read URLs that point at them.

Blob `attachments/{media id}/{safe file name}` holds the bytes; a record in the `media` table
(partition = tenant) holds what we know of them, including the policy its URL was signed under.
URLs are SAS tokens signed against a stored access policy on the container (`policies.py`):
deleting that policy revokes every URL issued under it.

A blob is written before its record, in the same request as a blob index tag `unrecorded` (the
time it was written or last adopted, then its tenant: Find Blobs by Tags returns only the tags its
query names); the tag is removed once the record exists.
So a blob whose record was never written (storage failed between the two writes, the process died)
stays tagged, and the sweep (`sweep.py`) finds it with one Find Blobs by Tags query, however many
recorded media the container holds. Invariant: a blob without the tag has a record, or is being
deleted with it; a tagged blob may have one (the tag's removal failed), which the sweep checks.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.storage.blob import BlobClient, ContainerClient, ContentSettings, generate_blob_sas
from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel, to_pascal

from shared.clock import now_iso
from shared.errors import AlreadyExists, ChangedMeanwhile, NotConfigured, ServiceError
from shared.media.policies import StoredPolicy, add_policy, delete_policy, list_policies
from shared.overlap import later
from shared.settings import Settings
from shared.storage import Storage, storage_errors
from shared.tables import JsonText, Row, Table

if TYPE_CHECKING:
    from shared.settings import Settings

MEDIA_TABLE = "media"
# The blob index tag of a blob whose record is not written yet. Tag values allow letters, digits,
# space and + - . / : = _ only; times are written fixed-width so that they compare as strings.
UNRECORDED_TAG = "unrecorded"
_TAG_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
log = logging.getLogger(__name__)


def _column(name: str) -> str:
    """Media columns are camelCase (the keys keep the table's own names)."""
    return to_pascal(name) if name in ("partition_key", "row_key") else to_camel(name)


class MediaRecord(Row):
    """What the service knows of one stored file (partition: the tenant; row: the media id);
    `optimization` is filled by the optimiser."""

    model_config = ConfigDict(alias_generator=_column)

    media_id: str
    tenant_id: str
    phone_number: str
    file_name: str
    original_file_name: str
    content_type: str
    size: int
    sha256: str
    blob_name: str
    uri: str
    created_at: str
    optimization_state: str  # pending | not_needed | optimized | failed
    converted_from: str | None = None
    source: str = "upload"  # upload | inbound
    optimization: JsonText[dict[str, Any]] = Field(default_factory=dict)
    # The stored access policy `uri` was signed under; None in records older than this field.
    sas_policy_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "mediaId": self.media_id,
            "tenantId": self.tenant_id,
            "phoneNumber": self.phone_number,
            "uri": self.uri,
            "fileName": self.file_name,
            "originalFileName": self.original_file_name,
            "contentType": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "createdAt": self.created_at,
            "source": self.source,
            "optimization": {"state": self.optimization_state, **self.optimization},
        }
        if self.converted_from:
            body["convertedFrom"] = self.converted_from
        return body


@dataclass(frozen=True)
class UnrecordedBlob:
    """A media blob still tagged as written before its record; `since` is the tag's time."""

    name: str
    tenant_id: str
    media_id: str
    since: str


@dataclass(frozen=True)
class BlobVersion:
    """One version of a media blob as its properties describe it (no bytes)."""

    etag: str
    metadata: dict[str, str]


def _unrecorded_value(at: datetime, tenant_id: str) -> str:
    return f"{at.strftime(_TAG_TIME)} {tenant_id}"


class _PolicyOnly(Row):
    """The one column `media_per_policy` reads of every record."""

    model_config = ConfigDict(alias_generator=_column)

    sas_policy_id: str | None = None


class MediaStore:
    def __init__(self, storage: Storage, settings: Settings) -> None:
        self._storage = storage
        self._settings = settings
        self._records = Table.of(storage, MEDIA_TABLE, MediaRecord)
        self._policies = Table.of(storage, MEDIA_TABLE, _PolicyOnly)
        self._policy_ready = False
        self._lock = threading.Lock()

    @property
    def container_name(self) -> str:
        return self._settings.media_container

    def _container(self, name: str | None = None) -> ContainerClient:
        """The media container (or another), created on first use."""
        with storage_errors():
            return self._storage.container(name or self.container_name)

    def ensure_read_policy(self) -> None:
        """Create the container and its read-only stored access policy once (idempotent); a
        refusal (no slot left for the policy) is not remembered, so freeing one is enough."""
        if self._policy_ready:
            return
        with self._lock:
            if self._policy_ready:
                return
            add_policy(self._container(), self._settings.sas_policy_id)
            self._policy_ready = True

    def read_policies(self) -> list[StoredPolicy]:
        return list_policies(self._container())

    def delete_policy(self, policy_id: str) -> None:
        """Revoke every URL signed under `policy_id` (within 30 s); never the configured one."""
        delete_policy(self._container(), policy_id, configured=self._settings.sas_policy_id)

    def media_per_policy(self) -> dict[str | None, int]:
        """How many media records were signed under each policy id (None: recorded before
        records kept it). Reads every record's one property: an operator's question."""
        counts: dict[str | None, int] = {}
        for row in self._policies.rows(select=["PartitionKey", "RowKey", "sasPolicyId"]):
            counts[row.sas_policy_id] = counts.get(row.sas_policy_id, 0) + 1
        return counts

    def _require_signing_key(self) -> None:
        if self._storage.account_key is None:
            # MEDIA_STORAGE_ACCOUNT_KEY unset or refused (see shared.settings): no URL can be
            # issued, so nothing is stored either.
            raise NotConfigured(
                "Media URLs cannot be signed: no signing key is configured.",
                code="media_not_configured",
            )

    def sign(self, blob_name: str) -> str:
        """A read-only, blob-scoped URL valid for the configured 99 years."""
        self._require_signing_key()
        self.ensure_read_policy()
        blob = self._storage.blobs.get_blob_client(self.container_name, blob_name)
        expiry = datetime.now(UTC) + timedelta(days=self._settings.sas_validity_days)
        token = generate_blob_sas(
            account_name=self._storage.account_name,
            container_name=self.container_name,
            blob_name=blob_name,
            account_key=self._storage.account_key,
            policy_id=self._settings.sas_policy_id,
            expiry=expiry,
            protocol=None if self._storage.is_emulator else "https",
        )
        return f"{blob.url}?{token}"

    def put(
        self,
        *,
        tenant_id: str,
        phone_number: str,
        file_name: str,
        original_file_name: str,
        content_type: str,
        data: bytes,
        optimization_state: str,
        converted_from: str | None = None,
        source: str = "upload",
        media_id: str | None = None,
        sha256: str | None = None,
    ) -> MediaRecord:
        """Blob first (never overwriting), then the record; if recording fails the blob goes too.
        `sha256` is the digest of `data` when the caller has it already (computed as it read the
        bytes). The blob's unrecorded tag is removed after the answer (see `_untag`).

        A given `media_id` (derived from an Idempotency-Key's claim) makes a repeated put converge
        on one media item: it returns the record an earlier put stored, and adopts the blob an
        earlier put left without a record (that put died, or is running now: its blob is kept for
        the record either of them writes, or for the orphan sweep)."""
        self._require_signing_key()
        self.ensure_read_policy()
        if media_id is not None:
            earlier = self.get({tenant_id}, media_id)
            if earlier is not None:
                return earlier
        keyed, media_id = media_id is not None, media_id or secrets.token_hex(16)
        blob_name = f"{media_id}/{file_name}"
        digest = sha256 or hashlib.sha256(data).hexdigest()
        blob = self._storage.blobs.get_blob_client(self.container_name, blob_name)
        metadata = {
            "tenantid": tenant_id,
            "mediaid": media_id,
            "sha256": digest,
            "originalfilename": quote(original_file_name, safe=""),
        }
        adopted = self._write_unrecorded(
            blob, data, content_type=content_type, metadata=metadata, adopt=keyed
        )
        record = MediaRecord(
            partition_key=tenant_id,
            row_key=media_id,
            media_id=media_id,
            tenant_id=tenant_id,
            phone_number=phone_number,
            file_name=file_name,
            original_file_name=original_file_name,
            content_type=content_type,
            size=len(data),
            sha256=digest,
            blob_name=blob_name,
            uri=self.sign(blob_name),
            created_at=now_iso(),
            optimization_state=optimization_state,
            converted_from=converted_from,
            source=source,
            sas_policy_id=self._settings.sas_policy_id,
        )
        try:
            record = self._records.insert(record)
        except BaseException as error:
            if not keyed:
                with suppress(ServiceError), storage_errors():  # still tagged: the sweep removes it
                    blob.delete_blob(delete_snapshots="include")
                if isinstance(error, AlreadyExists):  # a new random id taken: our defect
                    raise ServiceError("A new media id was already taken.") from error
            elif isinstance(error, AlreadyExists):
                stored = self.get({tenant_id}, media_id)
                if stored is not None:
                    return stored  # a concurrent put under the same id recorded it first
            raise
        if adopted is not None and optimization_state == "pending":
            # The optimiser heard of this blob before it had a record, and let it be: the same
            # bytes written again (unless it changed since) tell it again, now that it has one.
            self.replace_in_place(
                blob_name, data, content_type=content_type, metadata=metadata, etag=adopted.etag
            )
        later(self._untag, blob)
        return record

    def _write_unrecorded(
        self,
        blob: BlobClient,
        data: bytes,
        *,
        content_type: str,
        metadata: dict[str, str],
        adopt: bool,
    ) -> BlobVersion | None:
        """Write the blob tagged unrecorded, never overwriting. With `adopt`, the same bytes
        already there (left by an earlier put under the same media id) are taken instead, and
        their tag renewed: the sweep deletes a blob only while it carries the tag value it read,
        so an adopted blob is safe from then on. The adopted version, or None for a new blob."""
        tags = {UNRECORDED_TAG: _unrecorded_value(datetime.now(UTC), metadata["tenantid"])}
        settings = ContentSettings(content_type=content_type)
        try:
            with storage_errors():
                blob.upload_blob(
                    data, overwrite=False, content_settings=settings, metadata=metadata, tags=tags
                )
            return None
        except AlreadyExists:
            adopted = self.blob_version(blob.blob_name) if adopt else None
            if adopted is None or adopted.metadata.get("sha256") != metadata["sha256"]:
                raise
        try:
            with storage_errors():
                blob.set_blob_tags(tags)  # leaves the etag as it is
        except ChangedMeanwhile:  # swept meanwhile: written anew
            with storage_errors():
                blob.upload_blob(
                    data, overwrite=False, content_settings=settings, metadata=metadata, tags=tags
                )
            return None
        return adopted

    def _untag(self, blob: BlobClient) -> None:
        """The record exists: the blob is no longer the sweep's business. Not waited for: a tag
        left (this failed, or the process ended first) costs the sweep one check, which finds
        the record and removes the tag itself."""
        try:
            with storage_errors():
                blob.set_blob_tags({})
        except ServiceError as error:  # the sweep finds the record and removes the tag itself
            log.warning("media blob %s keeps its unrecorded tag: %s", blob.blob_name, error)

    def unrecorded_blobs(self, tagged_before: datetime, limit: int) -> list[UnrecordedBlob]:
        """At most `limit` media blobs tagged unrecorded before `tagged_before`, in one Find
        Blobs by Tags query (an index lookup): its cost follows the tagged blobs alone."""
        query = f"\"{UNRECORDED_TAG}\" < '{tagged_before.strftime(_TAG_TIME)}'"
        blobs: list[UnrecordedBlob] = []
        with storage_errors():
            found = self._container().find_blobs_by_tags(query, results_per_page=limit)
            for item in islice(found, limit):
                since = (item.tags or {}).get(UNRECORDED_TAG, "")
                _, _, tenant_id = since.partition(" ")
                media_id, _, _ = item.name.partition("/")
                blobs.append(UnrecordedBlob(item.name, tenant_id, media_id, since))
        return blobs

    def settle_unrecorded(self, blob: UnrecordedBlob) -> bool:
        """Remove the tag when the blob has a record after all, else delete the blob and its
        kept original; either only while the blob still carries the tag value `blob` was found
        with (an upload adopting it renews the value first). True when the blob was deleted."""
        client = self._storage.blobs.get_blob_client(self.container_name, blob.name)
        unchanged = f"\"{UNRECORDED_TAG}\" = '{blob.since}'"
        try:
            if blob.tenant_id and self.get({blob.tenant_id}, blob.media_id) is not None:
                with storage_errors():
                    client.set_blob_tags({}, if_tags_match_condition=unchanged)
                return False
            with storage_errors():
                client.delete_blob(delete_snapshots="include", if_tags_match_condition=unchanged)
        except ChangedMeanwhile:
            return False  # deleted, adopted or recorded meanwhile
        self.discard_original(blob.name)
        return True

    def get(self, tenant_ids: frozenset[str] | set[str], media_id: str) -> MediaRecord | None:
        """The record if it belongs to one of `tenant_ids` (point reads, no scans)."""
        for tenant_id in sorted(tenant_ids):
            record = self._records.get(tenant_id, media_id)
            if record is not None:
                return record
        return None

    def update(self, record: MediaRecord, **changes: Any) -> MediaRecord:
        """Merge `changes` into the stored record whatever its version; `ChangedMeanwhile` when
        it was deleted meanwhile."""
        updated = record.changed(**changes)
        columns = updated.entity()
        self._records.patch(columns.pop("PartitionKey"), columns.pop("RowKey"), **columns)
        return updated

    def blob_version(self, blob_name: str) -> BlobVersion | None:
        """The current etag and metadata of a media blob, without downloading it; None if gone."""
        blob = self._storage.blobs.get_blob_client(self.container_name, blob_name)
        try:
            with storage_errors():
                props = blob.get_blob_properties()
        except ChangedMeanwhile:
            return None
        return BlobVersion(etag=props.etag, metadata=dict(props.metadata or {}))

    def keep_original(self, record: MediaRecord, data: bytes, metadata: dict[str, str]) -> None:
        """Store the bytes as uploaded, under the same name, in the originals container. A copy
        left by an interrupted earlier pass is the same original (media ids are never reused),
        so it is kept as it is."""
        container = self._container(self._settings.originals_container)
        with suppress(AlreadyExists), storage_errors():
            container.upload_blob(
                record.blob_name,
                data,
                overwrite=False,
                content_settings=ContentSettings(content_type=record.content_type),
                metadata=metadata,
            )

    def discard_original(self, blob_name: str) -> None:
        original = self._storage.blobs.get_blob_client(
            self._settings.originals_container, blob_name
        )
        with suppress(ChangedMeanwhile), storage_errors():
            original.delete_blob(delete_snapshots="include")

    def replace_in_place(
        self, blob_name: str, data: bytes, *, content_type: str, metadata: dict[str, str], etag: str
    ) -> bool:
        """Overwrite a media blob under its own name, so every URL issued for it keeps working,
        but only while it is still the version `etag` names: False when it has since been
        replaced or deleted, which the caller must not clobber."""
        blob = self._storage.blobs.get_blob_client(self.container_name, blob_name)
        try:
            with storage_errors():
                blob.upload_blob(
                    data,
                    overwrite=True,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                    content_settings=ContentSettings(content_type=content_type),
                    metadata=metadata,
                )
        except ChangedMeanwhile:
            return False
        return True

    def delete(self, record: MediaRecord) -> None:
        """Blob(s) first, then the record: a failure part-way leaves a record that a repeated
        DELETE finishes, never an unreferenced blob."""
        for container in (self.container_name, self._settings.originals_container):
            blob = self._storage.blobs.get_blob_client(container, record.blob_name)
            with suppress(ChangedMeanwhile), storage_errors():
                blob.delete_blob(delete_snapshots="include")
        self._records.delete(record.tenant_id, record.media_id)
