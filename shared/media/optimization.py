"""The blob trigger's side of media optimisation: a new media blob goes through the pure optimiser
(`shared.optimize`), its original is kept in the originals container, the optimised bytes replace
it under the same name, and the outcome lands on the media record.

Idempotent and loop-free: only a record that is still `pending` is worked on. The blob we write
back carries `optimized=true` and the outcome in its metadata, so the event our own write raises
(and any duplicate or retried event) ends after one table read, or, when a previous run was
killed between the blob write and the record update, finishes that update from the metadata.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol

from shared.clock import now_iso
from shared.errors import ChangedMeanwhile
from shared.media.store import BlobVersion, MediaRecord, MediaStore
from shared.optimize import Result, optimize
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.carriers.common import CarrierLimits

log = logging.getLogger(__name__)

OPTIMIZED_MARK = "optimized"  # metadata key set ("true") on every blob this module writes
OUTCOME_KEY = "optimization"  # metadata key holding the outcome JSON, for crash recovery
# Well inside the 10-minute functionTimeout, leaving time for the storage calls around it.
TIMEOUT_S = 240.0

_MEDIA_BLOB = re.compile(r"^(?P<media_id>[0-9a-f]{32})/[^/]+$")


class BlobEvent(Protocol):
    """What the blob trigger delivers (an `azure.functions.blob.InputStream`)."""

    @property
    def name(self) -> str | None: ...

    @property
    def blob_properties(self) -> Mapping[str, Any] | None: ...

    @property
    def metadata(self) -> Mapping[str, Any] | None: ...

    def read(self, size: int = -1) -> bytes: ...


class CarrierBudgets(Protocol):
    def limits_for(self, number: str) -> CarrierLimits: ...


def optimize_blob(
    blob: BlobEvent, media: MediaStore, settings: Settings, carriers: CarrierBudgets
) -> None:
    """Handle one blob event. Bad media ends as a recorded outcome; only an unexpected storage
    error raises, so the runtime retries it (and reports it on the poison queue in the end)."""
    container, _, blob_name = (blob.name or "").partition("/")
    match = _MEDIA_BLOB.match(blob_name)
    if container != settings.media_container or match is None:
        log.warning("ignoring blob %r: not a media blob of this app", blob.name)
        return
    media_id = match["media_id"]
    version = _version(blob, blob_name, media)
    tenant_id = version.metadata.get("tenantid") if version else None
    record = media.get({tenant_id}, media_id) if tenant_id else None
    if version is None or record is None or record.blob_name != blob_name:
        log.info("media %s is gone or unknown; nothing to optimise", media_id)
        return
    if record.optimization_state != "pending":
        log.info("media %s is already %s", media_id, record.optimization_state)
        return
    if version.metadata.get(OPTIMIZED_MARK) == "true":
        # Our own write, whose record update never happened (the run was killed in between).
        _record_optimized(media, record, version.metadata)
        return

    data = blob.read()
    result = optimize(
        data,
        record.content_type,
        budget_bytes=carriers.limits_for(record.phone_number).budget_bytes,
        max_side=settings.max_image_side,
        timeout_s=TIMEOUT_S,
    )
    outcome = _outcome(result)
    if result.state != "optimized" or result.data is None:
        if result.state == "failed":
            log.warning("media %s not optimised: %s %s", media_id, result.reason, result.detail)
        _update(media, record, optimization_state=result.state, optimization=outcome)
        return

    # The original is safe in `originals` before anything overwrites it.
    media.keep_original(record, data, version.metadata)
    metadata = {
        **version.metadata,
        "sha256": hashlib.sha256(result.data).hexdigest(),
        OPTIMIZED_MARK: "true",
        OUTCOME_KEY: json.dumps(outcome, separators=(",", ":")),
    }
    written = media.replace_in_place(
        blob_name,
        result.data,
        content_type=result.content_type,
        metadata=metadata,
        etag=version.etag,
    )
    if not written:
        # Replaced or deleted since the event. A deleted media's original must not outlive it;
        # otherwise the event for whatever replaced the blob decides what happens next.
        log.info("media %s changed while being optimised; leaving it", media_id)
        if media.get({record.tenant_id}, media_id) is None:
            media.discard_original(blob_name)
        return
    _record_optimized(media, record, metadata)
    log.info(
        "media %s optimised: %d -> %d bytes", media_id, result.original_bytes, len(result.data)
    )


def _version(blob: BlobEvent, blob_name: str, store: MediaStore) -> BlobVersion | None:
    """The etag and metadata of the version the event delivered; read from storage (a HEAD, no
    download) only when the binding leaves them out. None when the blob is gone."""
    properties = blob.blob_properties or {}
    etag, metadata = properties.get("ETag"), blob.metadata
    if etag and metadata:
        return BlobVersion(etag=str(etag), metadata={k: str(v) for k, v in metadata.items()})
    return store.blob_version(blob_name)


def _outcome(result: Result) -> dict[str, Any]:
    """The `optimization` object of the media record (shown by GET /api/v1/media/{id})."""
    outcome: dict[str, Any] = {
        "reason": result.reason,
        "originalContentType": result.original_type,
        "originalSize": result.original_bytes,
        "contentType": result.content_type if result.state == "optimized" else None,
        "size": result.new_bytes,
        "width": result.width,
        "height": result.height,
        "durationSeconds": round(result.duration_s, 3) if result.duration_s is not None else None,
        "elapsedMs": round(result.elapsed_ms),
        "optimizedAt": now_iso(),
    }
    return {k: v for k, v in outcome.items() if v is not None}


def _record_optimized(store: MediaStore, record: MediaRecord, metadata: dict[str, str]) -> None:
    """Point the record at the bytes now in the blob; everything needed is in the blob's
    metadata, so a crashed run's retry can finish this without redoing the work."""
    outcome: dict[str, Any] = json.loads(metadata[OUTCOME_KEY])
    _update(
        store,
        record,
        optimization_state="optimized",
        optimization=outcome,
        content_type=outcome["contentType"],
        size=outcome["size"],
        sha256=metadata["sha256"],
    )


def _update(store: MediaStore, record: MediaRecord, **changes: Any) -> None:
    # A record deleted meanwhile stays deleted: DELETE removed the blobs before the record.
    with suppress(ChangedMeanwhile):
        store.update(record, **changes)
