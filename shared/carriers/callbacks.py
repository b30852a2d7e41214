"""What the carrier endpoints record: a provider's status on the message it is about (found
through the provider message id index, or the reference the provider echoed), and the Telnyx
signatures already seen, so a replayed request is refused."""

from __future__ import annotations

import hashlib
import logging
import time

from shared.carriers.common import StatusReport
from shared.carriers.index import ProviderIndex
from shared.errors import AlreadyExists, Conflict
from shared.messages.status import MessageStatuses
from shared.messages.store import MessageStore
from shared.tables import Row, Table

REPLAYS_TABLE = "carriersignatures"
log = logging.getLogger(__name__)


class SeenSignature(Row):
    """partition = SHA-256 of the signature, row = the carrier."""

    seen_at: int


class SignatureReplays:
    def __init__(self, table: Table[SeenSignature]) -> None:
        self._table = table

    def claim(self, carrier: str, signature: str) -> SeenSignature:
        """Remember a signature seen within its tolerance window; the same one again is a
        replay of a captured request, refused with 409 `replayed`."""
        seen = SeenSignature(partition_key=hashlib.sha256(signature.encode()).hexdigest(),
                             row_key=carrier, seen_at=int(time.time()))  # fmt: skip
        try:
            return self._table.insert(seen)
        except AlreadyExists:
            raise Conflict("This signed request was already received.", code="replayed") from None

    def release(self, seen: SeenSignature) -> None:
        """Forget a signature whose request was not recorded, so the provider's retry of that
        very request is not taken for a replay."""
        self._table.delete(seen.partition_key, seen.row_key)


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
