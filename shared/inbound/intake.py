"""The durable accept of a carrier's inbound event, shared by the generic webhook and the
carrier endpoints: index it as pending, record it (a conditional insert that doubles as the
replay check), queue its processing, then answer the carrier.

Nothing is lost when two accepts of one event race, or one of them fails:
- A record is forgotten (so the carrier's retry of a failed request is new) only if no other
  accept has answered for it meanwhile: a duplicate accept of a record still `received` touches
  it (a conditional write), and the failed accept deletes only the version it wrote. If it
  cannot, the record stays and the pending index has the recovery sweep queue it.
- A duplicate that finds the record gone (its first accept failed and forgot it) records the
  event itself, as the first delivery would have.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.clock import now_iso
from shared.errors import AlreadyExists, ChangedMeanwhile, StorageUnavailable
from shared.inbound.event import CarrierEvent
from shared.inbound.pending import PendingIndex
from shared.inbound.queue import ProcessingQueue
from shared.inbound.records import RECEIVED, InboundRecord, InboundRecords, message_id_for

# Rounds of insert-or-read before the carrier is asked to retry (each lost round means another
# accept of the same event changed the record in between).
_ROUNDS = 3


@dataclass(frozen=True)
class Receipt:
    """The carrier's answer: our message id, and whether the event was already recorded."""

    message_id: str
    duplicate: bool


class Intake:
    def __init__(
        self,
        records: InboundRecords,
        pending: PendingIndex,
        queue: ProcessingQueue,
        *,
        requeue_after_seconds: float,
    ) -> None:
        self._records = records
        self._pending = pending
        self._queue = queue
        self._requeue_after = timedelta(seconds=requeue_after_seconds)

    def accept(self, tenant_id: str, event: CarrierEvent) -> Receipt:
        """Make the event durable and queue its processing; a replay is recognised and not
        queued again unless its first delivery evidently never reached the queue. The event is
        indexed as pending first, so a lost queue message is found by shared.inbound.recovery."""
        message_id = message_id_for(event.message_id)
        indexed = self._pending.mark(tenant_id, message_id)
        for _ in range(_ROUNDS):
            try:
                record = self._records.insert(
                    InboundRecord.received(tenant_id, message_id, event, now_iso())
                )
            except AlreadyExists:
                existing = self._records.get(tenant_id, message_id)
                if existing is None:
                    continue  # its first accept failed and forgot it: ours to record
                try:
                    self._duplicate(existing, indexed)
                except ChangedMeanwhile:
                    continue
                return Receipt(message_id, duplicate=True)
            self._queue_or_forget(record)
            return Receipt(message_id, duplicate=False)
        raise StorageUnavailable()

    def _duplicate(self, existing: InboundRecord, indexed: bool) -> None:
        if existing.state != RECEIVED:
            if indexed:
                self._pending.clear(existing.tenant_id, existing.message_id)  # already done
            return
        # Answered for now: the accept that recorded it may no longer forget it.
        self._records.update(existing)
        received = datetime.fromisoformat(existing.received_at)
        if datetime.now(UTC) - received > self._requeue_after:
            self._queue.send(existing.tenant_id, existing.message_id)

    def _queue_or_forget(self, record: InboundRecord) -> None:
        try:
            self._queue.send(record.tenant_id, record.message_id)
        except BaseException:
            # Not queued: forget the event so the carrier's retry of this failed request is
            # new, unless another accept answered for it (then recovery queues it).
            with suppress(StorageUnavailable):  # kept: the pending index has recovery queue it
                self._records.forget(record)
            raise
