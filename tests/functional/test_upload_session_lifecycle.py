"""Upload sessions without the host: the trigger's `main` fed real `InputStream`s, and the storage
sweep removing what unused and finished sessions leave behind (through their expiry pointers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
import requests
from azure.core.exceptions import ServiceRequestError

import open_upload
import receive_upload
import sweep_storage
from shared.app import App
from shared.media.sessions import SESSIONS_TABLE, UploadSessions
from tests import samples
from tests.conftest import TenantAccount, http_request
from tests.context import invocation_context

JPEG = samples.image("JPEG")


def open_session(account: TenantAccount, **changes: str) -> dict[str, Any]:
    body = {"phoneNumber": account.number, "tenantId": account.tenant_id,
            "fileName": "photo.jpg", "contentType": "image/jpeg", **changes}  # fmt: skip
    request = http_request(
        "POST", "/api/v1/media/uploads", body=json.dumps(body),
        headers={"Authorization": account.authorization},
    )  # fmt: skip
    response = open_upload.main(request, None)  # type: ignore[arg-type]
    assert response.status_code == 201, response.get_body()
    created: dict[str, Any] = json.loads(response.get_body())
    return created


def staged_name(created: dict[str, Any]) -> str:
    url: str = created["uploadUrl"]
    return url.split("?")[0].split("/uploads/", 1)[1]


def deliver(app: App, name: str, data: bytes) -> None:
    """What the blob trigger hands over for a staging blob (the bytes PUT there)."""
    container = app.settings.staging_container
    blob = func.blob.InputStream(
        data=data, name=f"{container}/{name}", uri=f"http://x/{container}/{name}",
        length=len(data),
    )  # fmt: skip
    receive_upload.main(blob, invocation_context())


def staged(app: App, media_id: str) -> list[str]:
    container = app.storage.blobs.get_container_client(app.settings.staging_container)
    return [b.name for b in container.list_blobs(name_starts_with=f"{media_id}/")]


def session_row(app: App, media_id: str) -> Any:
    table = app.storage.table(SESSIONS_TABLE)
    return next(iter(table.query_entities(f"PartitionKey eq '{media_id}'")), None)


def sessions_at(app: App, moment: datetime) -> UploadSessions:
    return UploadSessions(app.storage, app.settings, clock=lambda: moment)


def test_the_trigger_stores_the_file_and_settles_the_session(
    app: App, account: TenantAccount
) -> None:
    created = open_session(account)
    name = staged_name(created)
    assert requests.put(created["uploadUrl"], data=JPEG, headers=created["requiredHeaders"],
                        timeout=10).status_code == 201  # fmt: skip
    deliver(app, name, JPEG)
    record = app.media.get({account.tenant_id}, created["mediaId"])
    assert record is not None and record.blob_name == f"{created['mediaId']}/photo.jpg"
    assert session_row(app, created["mediaId"])["State"] == "ready"
    assert staged(app, created["mediaId"]) == []
    deliver(app, name, JPEG)  # the event again (at least once): nothing changes
    assert app.media.get({account.tenant_id}, created["mediaId"]) == record


def test_a_blob_no_session_expects_is_removed(app: App) -> None:
    container = app.storage.container(app.settings.staging_container)
    container.upload_blob("0123456789abcdef0123456789abcdef/x.jpg", JPEG, overwrite=True)
    deliver(app, "0123456789abcdef0123456789abcdef/x.jpg", JPEG)
    assert staged(app, "0123456789abcdef0123456789abcdef") == []


def test_a_storage_failure_is_retried_not_a_rejection(
    app: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = open_session(account)

    def unreachable(**_: Any) -> Any:
        raise ServiceRequestError("storage unreachable")

    monkeypatch.setattr(app.ingest, "store", unreachable)
    with pytest.raises(ServiceRequestError):
        deliver(app, staged_name(created), JPEG)
    assert session_row(app, created["mediaId"])["State"] == "uploading"
    monkeypatch.undo()
    deliver(app, staged_name(created), JPEG)  # the runtime's retry
    assert session_row(app, created["mediaId"])["State"] == "ready"


def test_the_sweep_removes_an_unused_session_and_its_staging_blob_once_expired(
    app: App, account: TenantAccount
) -> None:
    created = open_session(account)
    media_id = created["mediaId"]
    app.storage.container(app.settings.staging_container).upload_blob(
        staged_name(created), JPEG
    )  # PUT, but never checked (the trigger kept failing)
    expires = datetime.fromisoformat(created["expiresAt"])
    sessions_at(app, expires).remove_expired()
    assert session_row(app, media_id) is not None  # not due yet
    assert sessions_at(app, expires + timedelta(hours=2)).remove_expired() >= 1
    assert session_row(app, media_id) is None and staged(app, media_id) == []


def test_a_rejection_stays_readable_for_a_day(app: App, account: TenantAccount) -> None:
    created = open_session(account)
    media_id = created["mediaId"]
    deliver(app, staged_name(created), samples.image("PNG"))
    row = session_row(app, media_id)
    assert row["State"] == "rejected" and json.loads(row["Problem"])["status"] == 415
    soon = datetime.fromisoformat(created["expiresAt"]) + timedelta(hours=2)
    sessions_at(app, soon).remove_expired()
    assert session_row(app, media_id) is not None
    sessions_at(app, datetime.now(UTC) + timedelta(days=1, hours=2)).remove_expired()
    assert session_row(app, media_id) is None


def test_the_storage_timer_runs_the_session_sweep(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    def remove_expired() -> int:
        runs.append(1)
        return 0

    monkeypatch.setattr(app.sessions, "remove_expired", remove_expired)
    sweep_storage.main(func.timer.TimerRequest(past_due=False), invocation_context())
    assert runs == [1]
