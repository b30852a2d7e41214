"""The provider's message id -> our message, so that a status callback finds its message with
one point read. Table `carriermessages`: partition = the provider's id (spreads the load),
row = the carrier (two providers may coin the same id)."""

from __future__ import annotations

import hashlib
import re

from shared.tables import Row, Table

TABLE = "carriermessages"
# Provider ids are table keys here; anything outside this alphabet is hashed instead.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")


class ProviderMessage(Row):
    """partition = the provider's id (as `_key` makes it safe), row = the carrier."""

    tenant_id: str
    message_id: str


def _key(provider_id: str) -> str:
    if _SAFE_KEY.match(provider_id):
        return provider_id
    return "sha256-" + hashlib.sha256(provider_id.encode()).hexdigest()


class ProviderIndex:
    def __init__(self, table: Table[ProviderMessage]) -> None:
        self._table = table

    def remember(self, carrier: str, provider_id: str, tenant_id: str, message_id: str) -> None:
        row = ProviderMessage(partition_key=_key(provider_id), row_key=carrier,
                              tenant_id=tenant_id, message_id=message_id)  # fmt: skip
        self._table.upsert(row)  # the same send always maps to the same message

    def lookup(self, carrier: str, provider_id: str) -> ProviderMessage | None:
        return self._table.get(_key(provider_id), carrier)
