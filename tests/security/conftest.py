"""Helpers for hostile-input tests: send a request over real HTTP through the local host, check
the answer is the exact expected status (never a 5xx, always problem+json on failure), and prove
that a refused request stored nothing for the tenant."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import requests

from shared.app import App
from shared.media.store import MEDIA_TABLE
from shared.messages.store import TABLE as MESSAGES_TABLE
from tests.conftest import TenantAccount


@dataclass(frozen=True)
class Stored:
    """What one tenant has in storage: media rows, media blobs (by their `tenantid` metadata),
    message rows and inbound message rows."""

    media: frozenset[str]
    blobs: frozenset[str]
    messages: frozenset[str]
    inbound: frozenset[str]


def _rows(app: App, table: str, tenant_id: str) -> frozenset[str]:
    entities = app.storage.table(table).query_entities(
        "PartitionKey eq @tenant", parameters={"tenant": tenant_id}, select=["RowKey"]
    )
    return frozenset(str(e["RowKey"]) for e in entities)


def stored(app: App, tenant_id: str) -> Stored:
    container = app.storage.container(app.settings.media_container)
    blobs = frozenset(
        b.name
        for b in container.list_blobs(include=["metadata"])
        if (b.metadata or {}).get("tenantid") == tenant_id
    )
    return Stored(
        media=_rows(app, MEDIA_TABLE, tenant_id),
        blobs=blobs,
        messages=_rows(app, MESSAGES_TABLE, tenant_id),
        inbound=_rows(app, "inboundmessages", tenant_id),
    )


def expect(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The exact status; never a 5xx unless one is expected (the storage-outage 503); a
    problem+json body (with `code`) for every failure."""
    assert response.status_code < 500 or status >= 500, response.text[:500]
    assert response.status_code == status, response.text[:500]
    if status < 400:
        return response.json() if response.content else {}
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    assert "Traceback" not in response.text and "AccountKey" not in response.text
    return body


def upload_body(account: TenantAccount, content: bytes, **fields: Any) -> dict[str, Any]:
    return account.upload_json(content, **{"fileName": "photo.jpg", **fields})


def post_media(
    base_url: str, account: TenantAccount, *, json: Any = None, data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:  # fmt: skip
    return requests.post(
        f"{base_url}/api/v1/media",
        json=json,
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        auth=account.auth,
        timeout=60,
    )


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()
