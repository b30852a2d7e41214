"""Idempotency-Key claims racing other requests over HTTP: a claim that vanished between the
insert that found it and the read, then was taken again before this request's second insert,
is read again and resumed; a request that keeps losing answers a 409 problem, never a 500."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from azure.core.exceptions import ResourceExistsError

from shared.app import App
from shared.idempotency import TABLE
from tests import samples
from tests.conftest import TenantAccount


class Contended:
    """The idempotency table as other requests with the same key use it: before each of this
    request's claim inserts another request inserts the same claim (so this one finds it taken);
    before each of its reads the other request releases it (so the read finds nothing)."""

    def __init__(self, client: Any, inserts: int, reads: int) -> None:
        self._client, self.inserts, self.reads = client, inserts, reads
        self.inserts_lost = 0

    def create_entity(self, entity: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if self.inserts > 0:
            self.inserts -= 1
            self._client.create_entity(entity)  # another request's claim, a moment earlier
        try:
            return self._client.create_entity(entity, *args, **kwargs)
        except ResourceExistsError:
            self.inserts_lost += 1
            raise

    def get_entity(self, partition_key: str, row_key: str, *args: Any, **kwargs: Any) -> Any:
        if self.reads > 0:
            self.reads -= 1
            self._client.delete_entity(partition_key, row_key)  # that request was refused
        return self._client.get_entity(partition_key, row_key, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def contend(app: App, monkeypatch: pytest.MonkeyPatch, inserts: int, reads: int) -> Contended:
    real = app.storage.table
    table = Contended(real(TABLE), inserts, reads)
    monkeypatch.setattr(app.storage, "table", lambda name: table if name == TABLE else real(name))
    return table


def upload(base_url: str, account: TenantAccount, key: str) -> requests.Response:
    return requests.post(
        f"{base_url}/api/v1/media",
        data=json.dumps(account.upload_json(samples.image("JPEG"))),
        headers={"Authorization": account.authorization, "Idempotency-Key": key},
        timeout=30,
    )


def test_a_claim_released_and_taken_again_while_claiming_is_resumed_not_a_500(
    app: App, account: TenantAccount, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = uuid.uuid4().hex
    table = contend(app, monkeypatch, inserts=2, reads=1)
    first = upload(base_url, account, key)
    assert table.inserts_lost >= 2  # the insert found the claim, which then vanished and came back
    assert first.status_code == 201, first.text
    monkeypatch.undo()
    again = upload(base_url, account, key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["mediaId"] == first.json()["mediaId"]


def test_a_claim_that_keeps_vanishing_and_coming_back_is_a_409_problem_not_a_500(
    app: App, account: TenantAccount, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    contend(app, monkeypatch, inserts=1000, reads=1000)
    response = upload(base_url, account, uuid.uuid4().hex)
    assert response.status_code == 409, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "concurrent_update"
