"""Removing what a crash left behind: media blobs whose record was never written (storage failed
between the two writes and the clean-up failed too, or the process died in between).

Such blobs still carry the `unrecorded` index tag the upload wrote them with (`store.py`), so one
Find Blobs by Tags query lists them: a run costs a query plus a few calls per blob it finds, and
nothing per recorded media item, however old the account.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from shared.media.store import MediaStore

# Far longer than any upload request can take (Azure stops HTTP requests at 230 s).
ORPHAN_AGE = timedelta(minutes=15)
# Per run (every 15 minutes); what is left waits for the next one.
BATCH = 1000
log = logging.getLogger(__name__)


def sweep_orphan_blobs(
    media: MediaStore,
    *,
    older_than: timedelta = ORPHAN_AGE,
    now: datetime | None = None,
    limit: int = BATCH,
) -> int:
    """Delete media blobs (and their kept originals) tagged unrecorded for longer than
    `older_than` whose record does not exist; a blob whose record does exist only loses its
    tag. Blobs without the tag are never looked at. The number of blobs deleted."""
    cutoff = (now or datetime.now(UTC)) - older_than
    found = media.unrecorded_blobs(cutoff, limit)
    removed = 0
    for blob in found:
        if media.settle_unrecorded(blob):
            log.warning("removed orphan media blob %s (no record for it)", blob.name)
            removed += 1
    if len(found) == limit:
        log.warning("orphan sweep stopped after %d blobs; the next run goes on", limit)
    return removed
