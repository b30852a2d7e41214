"""Recovery of inbound events whose queue message was lost: the recover_inbound timer queues
again every event whose processing has not finished `inbound_recover_after_seconds` after it was
last queued, so the customer gets it without waiting for the carrier to replay it.

Lookup cost follows the work: the sweep reads the index of events not yet done
(shared.inbound.pending), one query over the events in flight, not the messages table, which
grows with every message ever received. The index rather than the record carries the state, so
its invariants are what make recovery complete:
- The index row is written before the record (`Intake.accept`), so no recorded event lacks one;
  a row whose record never appeared (the request died in between) is dropped after
  `ORPHAN_AFTER`.
- It is removed only after processing has queued the customer webhook, or when the event
  failed, so a crash or a lost message anywhere before that leaves it for the next sweep.
- Queuing again first moves the row's `QueuedAt` forward with an etag condition: of two sweeps
  one queues, and an event is queued again at most once per `inbound_recover_after_seconds`.
Duplicate queue messages are harmless: the record moves to `processed` once (etag condition) and
the webhook id is derived from the message id, so the customer gets one `webhook-id`.
Bound: an event whose message is lost reaches processing within `inbound_recover_after_seconds`
plus the timer's period (recover_inbound/function.json).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from itertools import islice

from shared.inbound.pending import PendingIndex
from shared.inbound.queue import ProcessingQueue
from shared.inbound.records import FAILED, InboundRecords

log = logging.getLogger(__name__)

# Longer than any request lives (Azure ends HTTP requests at 230 s): an index row still without
# its record by then belongs to a request that died before writing the record.
ORPHAN_AFTER = timedelta(minutes=10)
# Events queued again per run; any others wait for the next run, so one run stays short.
MAX_PER_RUN = 500


class Recovery:
    def __init__(
        self,
        records: InboundRecords,
        pending: PendingIndex,
        queue: ProcessingQueue,
        *,
        recover_after_seconds: float,
    ) -> None:
        self._records = records
        self._pending = pending
        self._queue = queue
        self._recover_after = timedelta(seconds=recover_after_seconds)

    def run(self, now: datetime | None = None) -> int:
        """Queue again the events not done `inbound_recover_after_seconds` after they were last
        queued; returns how many were queued."""
        now = now or datetime.now(UTC)
        queued = 0
        for event in islice(self._pending.queued_before(now - self._recover_after), MAX_PER_RUN):
            record = self._records.get(event.tenant_id, event.message_id)
            if record is None:
                if event.queued_at < now - ORPHAN_AFTER:
                    self._pending.clear(event.tenant_id, event.message_id)
                continue
            if record.state == FAILED:
                self._pending.clear(event.tenant_id, event.message_id)
                continue
            # `received`, or `processed` with the webhook perhaps not queued: processing does both.
            if self._pending.claim_requeue(event, now):
                self._queue.send(event.tenant_id, event.message_id)
                queued += 1
        if queued:
            log.warning("queued %d inbound events again: their queue messages were lost", queued)
        return queued
