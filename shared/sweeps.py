"""The storage timer's work: removing what crashes and the passing of time leave behind, at a cost
that follows what there is to remove, not the age of the account (see each sweep's module)."""

from __future__ import annotations

from typing import Any

from shared.carriers.callbacks import SignatureReplays
from shared.idempotency import Idempotency
from shared.login_throttle import ThrottleTable
from shared.media.sessions import UploadSessions
from shared.media.store import MediaStore
from shared.media.sweep import sweep_orphan_blobs


def sweep(
    media: MediaStore,
    idempotency: Idempotency[Any],
    sessions: UploadSessions,
    replays: SignatureReplays,
    throttle: ThrottleTable,
) -> None:
    """Orphan media blobs, expired idempotency claims, finished or unused upload sessions (with
    their staging blobs), carrier signatures too old to verify, then idle login-throttle rows; one
    failing does not starve the others."""
    try:
        sweep_orphan_blobs(media)
    finally:
        try:
            idempotency.remove_expired()
        finally:
            try:
                sessions.remove_expired()
            finally:
                try:
                    replays.remove_expired()
                finally:
                    throttle.remove_idle()
