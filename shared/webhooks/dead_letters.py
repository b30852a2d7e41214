"""Webhooks that could not be delivered: listed for operators (admin CLI) and sent again on
request, under the same `webhook-id`, as a new round of tries."""

from __future__ import annotations

import secrets
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode

from shared.app import App
from shared.errors import NotFound
from shared.webhooks.deliveries import (
    DEAD_LETTERS,
    DELIVERIES,
    State,
    delivery_view,
    now_iso,
    queue_try,
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


def redeliver(app: App, dead_letter_id: str) -> dict[str, Any]:
    """Queue a dead-lettered webhook again (a fresh round of the retry schedule) and remove the
    dead letter. The dead-letter id is the delivery's `webhook-id`."""
    letters = app.storage.table(DEAD_LETTERS)
    found = list(letters.query_entities("RowKey eq @id", parameters={"id": dead_letter_id}))
    if not found:
        raise NotFound(f"dead letter {dead_letter_id} not found", code="dead_letter_not_found")
    tenant_id = str(found[0]["PartitionKey"])
    deliveries = app.storage.table(DELIVERIES)
    row = deliveries.get_entity(tenant_id, dead_letter_id)
    ticket = secrets.token_hex(8)
    deliveries.update_entity(
        {"PartitionKey": tenant_id, "RowKey": dead_letter_id, "State": State.PENDING,
         "Reason": "", "Ticket": ticket, "Attempt": 0, "Round": int(row.get("Round", 1)) + 1,
         "NextAttemptAt": now_iso()},
        mode=UpdateMode.MERGE,
        etag=row.metadata["etag"],
        match_condition=MatchConditions.IfNotModified,
    )  # fmt: skip
    queue_try(app, tenant_id, dead_letter_id, ticket, 1, 0)
    letters.delete_entity(tenant_id, dead_letter_id)
    view = delivery_view(app, tenant_id, dead_letter_id)
    assert view is not None
    return view
