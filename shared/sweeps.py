"""The storage timer's work: removing what crashes and the passing of time leave behind, at a cost
that follows what there is to remove, not the age of the account (see each sweep's module)."""

from __future__ import annotations

from typing import Any

from shared.idempotency import Idempotency
from shared.media.store import MediaStore
from shared.media.sweep import sweep_orphan_blobs


def sweep(media: MediaStore, idempotency: Idempotency[Any]) -> None:
    """Orphan media blobs, then expired idempotency claims; one failing does not starve the
    other."""
    try:
        sweep_orphan_blobs(media)
    finally:
        idempotency.remove_expired()
