"""Removing what a crash left behind: media blobs whose record was never written (storage failed
between the two writes and the clean-up failed too, or the process died in between)."""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.app import App

# Far longer than any upload request can take (Azure stops HTTP requests at 230 s).
ORPHAN_AGE = timedelta(minutes=15)
log = logging.getLogger(__name__)


def sweep_orphan_blobs(
    app: App, *, older_than: timedelta = ORPHAN_AGE, now: datetime | None = None
) -> int:
    """Delete media blobs (and their kept originals) older than `older_than` that no record
    points at. Blobs without our metadata are not ours to judge and are left alone."""
    now = now or datetime.now(UTC)
    container = app.storage.container(app.settings.media_container)
    removed = 0
    for blob in container.list_blobs(include=["metadata"]):
        meta = blob.metadata or {}
        tenant_id, media_id = meta.get("tenantid"), meta.get("mediaid")
        if not tenant_id or not media_id or now - blob.creation_time < older_than:
            continue
        if app.media.get({tenant_id}, media_id) is not None:
            continue
        try:
            container.delete_blob(
                blob.name, delete_snapshots="include", etag=blob.etag,
                match_condition=MatchConditions.IfNotModified,
            )  # fmt: skip
        except (ResourceNotFoundError, ResourceModifiedError):
            continue  # deleted or rewritten meanwhile: not ours to remove now
        originals = app.storage.blobs.get_container_client(app.settings.originals_container)
        with suppress(ResourceNotFoundError):
            originals.delete_blob(blob.name, delete_snapshots="include")
        log.warning("removed orphan media blob %s (no record for %s)", blob.name, media_id)
        removed += 1
    return removed
