"""The provider's message id -> our message, so that a status callback finds its message with
one point read. Table `carriermessages`: partition = the provider's id (spreads the load),
row = the carrier (two providers may coin the same id)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError

from shared.storage import Storage

TABLE = "carriermessages"
# Provider ids are table keys here; anything outside this alphabet is hashed instead.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")


@dataclass(frozen=True)
class MessageRef:
    tenant_id: str
    message_id: str


def _key(provider_id: str) -> str:
    if _SAFE_KEY.match(provider_id):
        return provider_id
    return "sha256-" + hashlib.sha256(provider_id.encode()).hexdigest()


def remember(
    storage: Storage, carrier: str, provider_id: str, tenant_id: str, message_id: str
) -> None:
    storage.table(TABLE).upsert_entity(
        {"PartitionKey": _key(provider_id), "RowKey": carrier, "TenantId": tenant_id,
         "MessageId": message_id}
    )  # fmt: skip


def lookup(storage: Storage, carrier: str, provider_id: str) -> MessageRef | None:
    try:
        entity = storage.table(TABLE).get_entity(_key(provider_id), carrier)
    except ResourceNotFoundError:
        return None
    return MessageRef(str(entity["TenantId"]), str(entity["MessageId"]))
