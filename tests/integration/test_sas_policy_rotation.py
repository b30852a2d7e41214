"""Rotating SAS_POLICY_ID against the five stored access policies a container can hold, and the
operator's CLI commands that list and delete them, on Azurite through the upload function."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import pytest
import requests

import upload_media
from shared import admin
from shared.app import App
from shared.media.ingest import Ingest
from shared.media.store import MEDIA_TABLE, MediaStore
from tests import samples
from tests.conftest import TenantAccount, app_with, http_request

JPEG = samples.image("JPEG")


def upload(account: TenantAccount) -> Any:
    request = http_request(
        "POST", "/api/v1/media", body=json.dumps(account.upload_json(JPEG)).encode(),
        headers={"Authorization": account.authorization},
    )  # fmt: skip
    return upload_media.main(request, None)  # type: ignore[arg-type]


def body_of(response: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response.get_body())
    return parsed


def cli(app: App, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = admin.main(list(argv), app=app)
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else captured.err


def stored(app: App, account: TenantAccount) -> tuple[int, int]:
    """(blobs in the app's media container, media records of the account's tenant)."""
    container = app.storage.container(app.settings.media_container)
    records = app.storage.table(MEDIA_TABLE).query_entities(
        "PartitionKey eq @t", parameters={"t": account.tenant_id}
    )
    return len(list(container.list_blobs())), len(list(records))


def test_sixth_policy_refuses_uploads_until_the_operator_deletes_one(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    container, tag = f"rotation-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex[:8]
    ids = [f"read-{tag}-v{n}" for n in range(1, 7)]
    uris = {}
    for policy_id in ids[:5]:
        with app_with(app, media_container=container, sas_policy_id=policy_id):
            response = upload(account)
            assert response.status_code == 201, response.get_body()
            uris[policy_id] = body_of(response)["uri"]

    with app_with(app, media_container=container, sas_policy_id=ids[5]) as sixth:
        before = stored(sixth, account)
        refused = upload(account)
        assert refused.status_code == 503
        assert body_of(refused)["code"] == "sas_policy_limit"
        assert stored(sixth, account) == before == (5, 5)

        code, listed = cli(sixth, capsys, "sas-policy-list")
        assert code == 0
        assert listed["configuredPolicy"] == ids[5] and listed["limit"] == 5
        assert [(p["id"], p["media"], p["configured"]) for p in listed["policies"]] == [
            (policy_id, 1, False) for policy_id in ids[:5]
        ]

        code, deleted = cli(sixth, capsys, "sas-policy-delete", ids[0])
        assert code == 0
        assert [p["id"] for p in deleted["policies"]] == ids[1:5]
        assert deleted["mediaUnderDeletedPolicies"][ids[0]] == 1  # the media table is shared

        accepted = upload(account)
        assert accepted.status_code == 201, accepted.get_body()
        assert requests.get(body_of(accepted)["uri"], timeout=10).content == JPEG
        assert stored(sixth, account) == (6, 6)

        code, listed = cli(sixth, capsys, "sas-policy-list")
        assert [(p["id"], p["configured"]) for p in listed["policies"]] == [
            *((policy_id, False) for policy_id in ids[1:5]),
            (ids[5], True),
        ]

    assert requests.get(uris[ids[0]], timeout=10).status_code == 403
    assert requests.get(uris[ids[1]], timeout=10).content == JPEG


def test_deleting_the_configured_or_a_missing_policy_is_refused(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    container, policy_id = f"rotation-{uuid.uuid4().hex[:12]}", f"read-{uuid.uuid4().hex[:8]}"
    with app_with(app, media_container=container, sas_policy_id=policy_id) as configured:
        uri = body_of(upload(account))["uri"]
        code, error = cli(configured, capsys, "sas-policy-delete", policy_id)
        assert code == 1 and "configured SAS_POLICY_ID" in error
        code, error = cli(configured, capsys, "sas-policy-delete", "no-such-policy")
        assert code == 1 and "no-such-policy" in error
        code, listed = cli(configured, capsys, "sas-policy-list")
        assert [p["id"] for p in listed["policies"]] == [policy_id]
    assert requests.get(uri, timeout=10).content == JPEG


def test_records_signed_before_they_kept_their_policy_count_as_unknown(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    record = app.media.put(
        tenant_id=account.tenant_id, phone_number=account.number, file_name="old.jpg",
        original_file_name="old.jpg", content_type="image/jpeg", data=JPEG,
        optimization_state="not_needed",
    )  # fmt: skip
    assert record.sas_policy_id == app.settings.sas_policy_id
    table = app.storage.table(MEDIA_TABLE)
    before = cli(app, capsys, "sas-policy-list")[1]["mediaUnderUnknownPolicy"]
    older = {k: v for k, v in record.to_entity().items() if k != "sasPolicyId"}
    table.upsert_entity(older, mode="replace")
    after = cli(app, capsys, "sas-policy-list")[1]
    assert after["mediaUnderUnknownPolicy"] == before + 1
    assert app.media.get({account.tenant_id}, record.media_id).sas_policy_id is None  # type: ignore[union-attr]


def test_upload_without_a_signing_key_is_503_and_stores_nothing(
    app: App, account: TenantAccount
) -> None:
    container = f"nokey-{uuid.uuid4().hex[:12]}"
    with app_with(app, media_container=container) as keyless:
        keyless.media = MediaStore(replace(keyless.storage, account_key=None), keyless.settings)
        keyless.ingest = Ingest(keyless.media, keyless.settings)
        before = stored(keyless, account)
        response = upload(account)
        assert response.status_code == 503
        assert body_of(response)["code"] == "media_not_configured"
        assert stored(keyless, account) == before
