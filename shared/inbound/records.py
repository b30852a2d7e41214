"""Inbound messages in Table Storage: `inboundmessages`, partition = receiving tenant, row = our
message id, which is derived from the carrier's `messageId` so that the first write doubles as
the replay check (a conditional insert: a replay finds the row already there).

States: `received` (recorded, processing queued) -> `processed` (attachments re-hosted, the
customer webhook named) or `failed` (processing crashed on every try). Every change after the
insert is conditional on the version read, so a concurrent writer's change is never overwritten.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field, PlainSerializer, PlainValidator

from shared.errors import ChangedMeanwhile
from shared.inbound.event import CarrierEvent, decode_event, encode_event
from shared.storage import Storage
from shared.tables import JsonText, Table, TenantScoped, retry_on_change

INBOUND_TABLE = "inboundmessages"
EVENT_TYPE = "message.received"
RECEIVED, PROCESSED, FAILED = "received", "processed", "failed"
_NAMESPACE = uuid.UUID("0b8f5a8e-2d0c-4a43-9a4b-0d6a3c1e7f21")


def message_id_for(carrier_message_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, carrier_message_id))


def _event(value: Any) -> CarrierEvent:
    return value if isinstance(value, CarrierEvent) else decode_event(str(value))


# The carrier's event as received, kept as its JSON text.
EventText = Annotated[
    CarrierEvent, PlainValidator(_event), PlainSerializer(encode_event, return_type=str)
]


class InboundRecord(TenantScoped):
    """A row of `inboundmessages`: partition = tenant id, row = message id."""

    event: EventText
    state: str
    received_at: str
    carrier_message_id: str = ""
    from_: str = Field(default="", alias="From")
    to: str = ""
    processed_at: str | None = None
    attachments: JsonText[list[dict[str, Any]]] = Field(default_factory=list)
    failed_attachments: JsonText[list[dict[str, Any]]] = Field(default_factory=list)
    webhook_id: str | None = None
    failure_reason: str | None = None

    @classmethod
    def received(
        cls, tenant_id: str, message_id: str, event: CarrierEvent, at: str
    ) -> InboundRecord:
        return cls(
            partition_key=tenant_id, row_key=message_id, event=event, state=RECEIVED,
            received_at=at, carrier_message_id=event.message_id, from_=event.from_, to=event.to,
        )  # fmt: skip

    @property
    def message_id(self) -> str:
        return self.row_key

    def payload(self) -> dict[str, Any]:
        """The customer webhook body: the guide's fields, then ours. `attachments` holds only
        re-hosted files (the guide's download loop works unchanged); the ones we could not
        fetch or accept are listed in `failedAttachments` with an `error` each."""
        return {
            "messageId": self.message_id,
            "from": self.event.from_,
            "message": self.event.message or "",
            "attachments": [
                {k: a[k] for k in ("name", "url", "contentType", "size")} for a in self.attachments
            ],
            "to": self.event.to,
            "receivedAt": self.received_at,
            "failedAttachments": self.failed_attachments,
        }


class InboundRecords:
    """The one store of `inboundmessages`. Writes after the insert are conditional: a lost race
    is `ChangedMeanwhile` for the caller to answer."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @property
    def _table(self) -> Table[InboundRecord]:
        return Table(self._storage.table(INBOUND_TABLE), InboundRecord)

    def get(self, tenant_id: str, message_id: str) -> InboundRecord | None:
        return self._table.get(tenant_id, message_id)

    def insert(self, record: InboundRecord) -> InboundRecord:
        """Record a new event; `AlreadyExists` when its message id is taken (a replay)."""
        return self._table.insert(record)

    def update(self, record: InboundRecord) -> InboundRecord:
        """Write `record` over the version it was read as; `ChangedMeanwhile` if that changed."""
        return self._table.update(record)

    def forget(self, record: InboundRecord) -> bool:
        """Delete the record as it was read; False when it changed or vanished meanwhile."""
        try:
            self._table.delete(record.tenant_id, record.message_id, etag=record.etag)
        except ChangedMeanwhile:
            return False
        return True

    def mark_failed(self, tenant_id: str, message_id: str, reason: str) -> InboundRecord | None:
        """Move a record not yet processed to `failed`; None when there is none to fail."""

        def attempt() -> InboundRecord | None:
            record = self.get(tenant_id, message_id)
            if record is None or record.state == PROCESSED:
                return None
            return self.update(record.changed(state=FAILED, failure_reason=reason))

        return retry_on_change(attempt)
