"""Liveness of the storage the service depends on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from shared.errors import ServiceError
from shared.http import json_response
from shared.storage import Storage, storage_errors

if TYPE_CHECKING:
    from shared.app import App

_TIMEOUT = 5


def storage_status(s: Storage) -> dict[str, str]:
    probes: dict[str, Callable[[], object]] = {
        "blob": lambda: s.blobs.get_service_properties(timeout=_TIMEOUT),
        "queue": lambda: s.queues.get_service_properties(timeout=_TIMEOUT),
        "table": lambda: next(iter(s.tables.list_tables(results_per_page=1)), None),
    }
    status = {}
    for name, probe in probes.items():
        try:
            with storage_errors():
                probe()
            status[name] = "ok"
        except ServiceError:
            status[name] = "unreachable"
    return status


def health(req: func.HttpRequest, app: App) -> func.HttpResponse:
    storage = storage_status(app.storage)
    healthy = all(v == "ok" for v in storage.values())
    return json_response(
        {"status": "ok" if healthy else "degraded", "storage": storage},
        status=200 if healthy else 503,
        headers={"Cache-Control": "no-store"},
    )
