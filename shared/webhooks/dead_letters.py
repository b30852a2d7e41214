"""Webhooks that could not be delivered: listed for operators (admin CLI) and sent again on
request, under the same `webhook-id`: a dead letter as a new round of tries, a delivery still
waiting for its next retry by bringing that try forward (`retry_now`)."""

from __future__ import annotations

import secrets
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode

from shared.app import App
from shared.clock import now_iso
from shared.errors import NotFound
from shared.webhooks.deliveries import (
    DEAD_LETTERS,
    DELIVERIES,
    State,
    delivery_view,
    queue_try,
    retry_now,
)


def _view(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "deadLetterId": e["RowKey"],
        "tenantId": e["PartitionKey"],
        "eventType": e.get("EventType", ""),
        "reason": e.get("Reason", ""),
        "attempts": int(e.get("Attempts", 0)),
        "lastStatus": int(e.get("LastStatus") or 0) or None,
        "lastError": e.get("LastError") or None,
        "deadAt": e.get("DeadAt", ""),
    }


def list_dead_letters(app: App, tenant_id: str | None = None) -> list[dict[str, Any]]:
    table = app.storage.table(DEAD_LETTERS)
    rows = (
        table.query_entities("PartitionKey eq @t", parameters={"t": tenant_id})
        if tenant_id
        else table.list_entities()
    )
    return sorted((_view(e) for e in rows), key=lambda v: str(v["deadAt"]))


def redeliver(app: App, webhook_id: str, tenant_id: str | None = None) -> dict[str, Any]:
    """Send a webhook again now. A dead letter is queued again (a fresh round of the retry
    schedule) and removed; a delivery waiting for its next retry has that try made now, and
    the scheduled message then finds it done. `tenant_id` saves a search of the deliveries."""
    letters = app.storage.table(DEAD_LETTERS)
    query, values = "RowKey eq @id", {"id": webhook_id}
    if tenant_id:
        query, values = "PartitionKey eq @t and RowKey eq @id", {"t": tenant_id, "id": webhook_id}
    found = list(letters.query_entities(query, parameters=values))
    if not found:
        return retry_now(app, tenant_id or _delivery_tenant(app, webhook_id), webhook_id).to_api()
    tenant_id = str(found[0]["PartitionKey"])
    deliveries = app.storage.table(DELIVERIES)
    row = deliveries.get_entity(tenant_id, webhook_id)
    ticket = secrets.token_hex(8)
    deliveries.update_entity(
        {"PartitionKey": tenant_id, "RowKey": webhook_id, "State": State.PENDING,
         "Reason": "", "Ticket": ticket, "Attempt": 0, "Round": int(row.get("Round", 1)) + 1,
         "NextAttemptAt": now_iso()},
        mode=UpdateMode.MERGE,
        etag=row.metadata["etag"],
        match_condition=MatchConditions.IfNotModified,
    )  # fmt: skip
    queue_try(app, tenant_id, webhook_id, ticket, 1, 0)
    letters.delete_entity(tenant_id, webhook_id)
    view = delivery_view(app, tenant_id, webhook_id)
    assert view is not None
    return view


def _delivery_tenant(app: App, webhook_id: str) -> str:
    # Without the tenant this reads every partition: fine for an operator's occasional command.
    rows = app.storage.table(DELIVERIES).query_entities(
        "RowKey eq @id", parameters={"id": webhook_id}, select=["PartitionKey"]
    )
    for row in rows:
        return str(row["PartitionKey"])
    raise NotFound(f"webhook {webhook_id} not found", code="webhook_not_found")
