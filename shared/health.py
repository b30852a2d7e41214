"""Liveness of the storage the service depends on."""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func
from azure.core.exceptions import AzureError

from shared.app import App
from shared.http import json_response

_TIMEOUT = 5


def storage_status(app: App) -> dict[str, str]:
    s = app.storage
    probes: dict[str, Callable[[], object]] = {
        "blob": lambda: s.blobs.get_service_properties(timeout=_TIMEOUT),
        "queue": lambda: s.queues.get_service_properties(timeout=_TIMEOUT),
        "table": lambda: next(iter(s.tables.list_tables(results_per_page=1)), None),
    }
    status = {}
    for name, probe in probes.items():
        try:
            probe()
            status[name] = "ok"
        except AzureError:
            status[name] = "unreachable"
    return status


def health(req: func.HttpRequest, app: App) -> func.HttpResponse:
    storage = storage_status(app)
    healthy = all(v == "ok" for v in storage.values())
    return json_response(
        {"status": "ok" if healthy else "degraded", "storage": storage},
        status=200 if healthy else 503,
        headers={"Cache-Control": "no-store"},
    )
