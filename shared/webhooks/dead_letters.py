"""Webhooks that could not be delivered: a row per dead letter in `webhookdeadletters`
(partition = tenant id, row = webhook id), listed for operators (admin CLI). Sending one again is
the deliveries' business (`WebhookDeliveries.redeliver`): this module never writes their rows."""

from __future__ import annotations

from typing import Any

from shared.tables import Table, TenantScoped, key_also_named

TABLE = "webhookdeadletters"


class DeadLetter(TenantScoped):
    partition_key: str = key_also_named("tenant_id", "PartitionKey")
    row_key: str = key_also_named("webhook_id", "RowKey")
    event_type: str = ""
    reason: str = ""
    attempts: int = 0
    last_status: int = 0
    last_error: str = ""
    dead_at: str = ""

    @property
    def webhook_id(self) -> str:
        return self.row_key

    def to_api(self) -> dict[str, Any]:
        return {
            "deadLetterId": self.webhook_id,
            "tenantId": self.tenant_id,
            "eventType": self.event_type,
            "reason": self.reason,
            "attempts": self.attempts,
            "lastStatus": self.last_status or None,
            "lastError": self.last_error or None,
            "deadAt": self.dead_at,
        }


class DeadLetters:
    """The dead letters' store."""

    def __init__(self, table: Table[DeadLetter]) -> None:
        self._table = table

    def add(self, letter: DeadLetter) -> None:
        self._table.upsert(letter)  # one writer per delivery: the try that gave up

    def find(self, webhook_id: str, tenant_id: str | None = None) -> DeadLetter | None:
        if tenant_id:
            return self._table.get(tenant_id, webhook_id)
        return next(iter(self._table.query("RowKey eq @id", {"id": webhook_id})), None)

    def remove(self, letter: DeadLetter) -> None:
        self._table.delete(letter.tenant_id, letter.webhook_id)

    def listed(self, tenant_id: str | None = None) -> list[dict[str, Any]]:
        """The dead letters (of one tenant, or all), oldest first."""
        rows = self._table.partition(tenant_id) if tenant_id else self._table.rows()
        return sorted((letter.to_api() for letter in rows), key=lambda view: str(view["deadAt"]))
