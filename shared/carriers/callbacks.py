"""What the carrier endpoints record: a provider's status on the message it is about (found
through the provider message id index, or the reference the provider echoed), and the Telnyx
signatures already seen, so a replayed request is refused."""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime

from shared.carriers.common import StatusReport
from shared.carriers.index import ProviderIndex
from shared.errors import AlreadyExists, Conflict
from shared.messages.status import MessageStatuses
from shared.messages.store import MessageStore
from shared.tables import Row, Table

REPLAYS_TABLE = "carriersignatures"
log = logging.getLogger(__name__)


class SeenSignature(Row):
    """partition = the hour of the signed timestamp (`YYYYMMDDTHH`, UTC), row = the carrier and
    the SHA-256 of the signature. A replay carries the same timestamp, so it meets the same row;
    whole past hours are removed by the storage sweep (`SignatureReplays.remove_expired`)."""

    seen_at: int


# Signatures older than this can no longer verify (Telnyx: 300 s tolerance), so their rows go.
REPLAYS_KEPT_SECONDS = 3600
REPLAYS_BATCH = 2000


def _hour(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H")


class SignatureReplays:
    def __init__(self, table: Table[SeenSignature]) -> None:
        self._table = table

    def claim(self, carrier: str, signature: str, signed_at: int) -> SeenSignature:
        """Remember a signature seen within its tolerance window; the same one again is a
        replay of a captured request, refused with 409 `replayed`."""
        digest = hashlib.sha256(signature.encode()).hexdigest()
        seen = SeenSignature(partition_key=_hour(signed_at), row_key=f"{carrier}-{digest}",
                             seen_at=int(time.time()))  # fmt: skip
        try:
            return self._table.insert(seen)
        except AlreadyExists:
            raise Conflict("This signed request was already received.", code="replayed") from None

    def release(self, seen: SeenSignature) -> None:
        """Forget a signature whose request was not recorded, so the provider's retry of that
        very request is not taken for a replay."""
        self._table.delete(seen.partition_key, seen.row_key)

    def remove_expired(self, now: float | None = None, *, limit: int = REPLAYS_BATCH) -> int:
        """Delete at most `limit` remembered signatures of hours that can no longer verify; one
        range query over past hours, so the cost follows what there is to remove."""
        cutoff = _hour((time.time() if now is None else now) - REPLAYS_KEPT_SECONDS)
        old = self._table.query("PartitionKey lt @cutoff", {"cutoff": cutoff}, limit=limit)
        removed = 0
        for seen in old:
            self._table.delete(seen.partition_key, seen.row_key)
            removed += 1
        return removed


class CarrierStatuses:
    def __init__(
        self,
        index: ProviderIndex,
        messages: MessageStore,
        statuses: MessageStatuses,
        replays: SignatureReplays,
    ) -> None:
        self._index = index
        self._messages = messages
        self._statuses = statuses
        self.replays = replays

    def apply(self, carrier: str, report: StatusReport) -> str | None:
        """Record a provider status on its message; the message's status afterwards, or None
        for a message we do not know (acknowledged, logged: the provider must not retry it
        forever)."""
        ref = self._index.lookup(carrier, report.provider_id) if report.provider_id else None
        message = self._messages.get(ref.tenant_id, ref.message_id) if ref else None
        if message is None and report.reference:
            # The provider echoed our reference (a signed part of its request): the callback
            # came before the index row, which is written only once the send's answer is in.
            candidate = self._messages.get(*report.reference)
            if candidate and candidate.carrier_message_id in (None, report.provider_id):
                message = candidate
        if message is None:
            log.warning("%s status for unknown message id %s ignored", carrier, report.provider_id)
            return None
        if report.status is not None:
            updated = self._statuses.advance(
                message.tenant_id, message.message_id, report.status, reason=report.reason,
                via=("sent",), carrier_message_id=report.provider_id,
            )  # fmt: skip
            message = (
                updated or self._messages.get(message.tenant_id, message.message_id) or message
            )
        return message.status
