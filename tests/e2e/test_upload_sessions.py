"""Upload sessions through the local host over real HTTP: the file PUT straight to the storage
emulator with the session's URL, checked by the blob trigger (polling here, Event Grid in Azure),
and the outcome read back from the API."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient

from shared.app import App
from shared.media.sessions import SESSIONS_TABLE
from tests import samples
from tests.conftest import TenantAccount, app_with, eventually

pytestmark = pytest.mark.e2e
LIMIT = 5 * 1024 * 1024


def open_session(base_url: str, account: TenantAccount, **changes: str) -> requests.Response:
    body = {
        "phoneNumber": account.number, "tenantId": account.tenant_id,
        "fileName": "photo.jpg", "contentType": "image/jpeg", **changes,
    }  # fmt: skip
    return requests.post(
        f"{base_url}/api/v1/media/uploads", json=body, auth=account.auth, timeout=10
    )


def session(base_url: str, account: TenantAccount, **changes: str) -> dict[str, Any]:
    response = open_session(base_url, account, **changes)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def put(created: dict[str, Any], data: bytes) -> requests.Response:
    return requests.put(
        created["uploadUrl"], data=data, headers=created["requiredHeaders"], timeout=30
    )


def complete(base_url: str, account: TenantAccount, media_id: str) -> requests.Response:
    return requests.post(
        f"{base_url}/api/v1/media/uploads/{media_id}/complete", auth=account.auth, timeout=60
    )


def shown(base_url: str, account: TenantAccount, media_id: str) -> dict[str, Any]:
    response = requests.get(f"{base_url}/api/v1/media/{media_id}", auth=account.auth, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def staged(app: App, media_id: str) -> list[str]:
    container = app.storage.blobs.get_container_client(app.settings.staging_container)
    return [b.name for b in container.list_blobs(name_starts_with=f"{media_id}/")]


def five_mb_jpeg() -> bytes:
    jpeg = samples.image("JPEG")
    return jpeg + b"\0" * (LIMIT - len(jpeg))


def test_a_session_answers_201_with_a_write_once_url_for_15_minutes(
    app: App, base_url: str, account: TenantAccount
) -> None:
    before = time.time()
    response = open_session(base_url, account)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"mediaId", "uploadUrl", "expiresAt", "requiredHeaders"}
    assert response.headers["Location"] == f"/api/v1/media/{created['mediaId']}"
    assert created["requiredHeaders"] == {"x-ms-blob-type": "BlockBlob"}
    query = dict(p.split("=", 1) for p in urlsplit(created["uploadUrl"]).query.split("&"))
    assert query["sp"] == "c" and query["sr"] == "b"  # create only, this one blob
    expires = datetime.fromisoformat(created["expiresAt"]).timestamp()
    assert 14 * 60 < expires - before <= 15 * 60 + 1
    assert shown(base_url, account, created["mediaId"])["state"] == "uploading"


def test_a_5_mb_put_with_requests_becomes_the_uploads_201(
    app: App, base_url: str, account: TenantAccount
) -> None:
    data = five_mb_jpeg()
    created = session(base_url, account)
    assert put(created, data).status_code == 201
    done = complete(base_url, account, created["mediaId"])
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["mediaId"] == created["mediaId"]
    assert body["fileName"] == "photo.jpg" and body["contentType"] == "image/jpeg"
    assert done.headers["Location"] == f"/api/v1/media/{created['mediaId']}"
    # Over the carrier budget, as an upload would be: the optimiser may have shrunk it already.
    if body["optimization"]["state"] == "pending":
        assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == LIMIT
    else:
        assert body["optimization"]["state"] == "optimized"
    assert requests.get(body["uri"], timeout=30).status_code == 200
    record = shown(base_url, account, created["mediaId"])
    assert record["state"] == "ready" and record["uri"] == body["uri"]
    eventually(lambda: staged(app, created["mediaId"]) == [])


def test_the_storage_sdk_uploads_to_the_url_and_heic_is_converted(
    app: App, base_url: str, account: TenantAccount
) -> None:
    heic = samples.image("HEIF", size=(80, 60))
    created = session(base_url, account, fileName="IMG_0001.HEIC", contentType="image/heic")
    BlobClient.from_blob_url(created["uploadUrl"]).upload_blob(heic)
    done = complete(base_url, account, created["mediaId"])
    assert done.status_code == 201, done.text
    assert done.json()["convertedFrom"] == "image/heic"
    assert done.json()["fileName"] == "IMG_0001.jpg"


def test_one_byte_over_5_mb_is_rejected_with_the_uploads_413(
    app: App, base_url: str, account: TenantAccount
) -> None:
    created = session(base_url, account)
    assert put(created, five_mb_jpeg() + b"\0").status_code == 201  # storage takes it...
    done = complete(base_url, account, created["mediaId"])
    assert done.status_code == 413  # ...the check refuses it
    assert done.json()["detail"] == "Media file exceeds maximum size of 5MB"
    state = shown(base_url, account, created["mediaId"])
    assert state["state"] == "rejected" and state["problem"]["code"] == "media_too_large"
    eventually(lambda: staged(app, created["mediaId"]) == [])
    media = app.storage.blobs.get_container_client(app.settings.media_container)
    assert list(media.list_blobs(name_starts_with=created["mediaId"])) == []


def test_a_lying_type_is_rejected_with_the_uploads_415(
    app: App, base_url: str, account: TenantAccount
) -> None:
    created = session(base_url, account)
    put(created, samples.image("PNG"))
    done = complete(base_url, account, created["mediaId"])
    assert done.status_code == 415
    assert done.json()["detail"] == (
        "Declared content type image/jpeg does not match the file content (image/png)"
    )
    assert shown(base_url, account, created["mediaId"])["problem"]["status"] == 415
    eventually(lambda: staged(app, created["mediaId"]) == [])


def test_a_put_after_expiry_is_refused_by_storage(
    app: App, base_url: str, account: TenantAccount
) -> None:
    with app_with(app, upload_session_seconds=1):
        created = session(base_url, account)
    time.sleep(2.5)
    refused = put(created, samples.image("JPEG"))
    assert refused.status_code == 403
    assert staged(app, created["mediaId"]) == []


def test_a_url_cannot_write_another_blob_nor_read_and_a_second_put_changes_nothing(
    app: App, base_url: str, account: TenantAccount
) -> None:
    created = session(base_url, account)
    parts = urlsplit(created["uploadUrl"])
    other = urlunsplit(parts._replace(path=parts.path.rsplit("/", 2)[0] + "/x/evil.jpg"))
    with pytest.raises(HttpResponseError) as elsewhere:
        BlobClient.from_blob_url(other).upload_blob(b"\xff\xd8\xff")
    assert elsewhere.value.status_code == 403
    blob = BlobClient.from_blob_url(created["uploadUrl"])
    with pytest.raises(HttpResponseError) as read:
        blob.download_blob()  # write-only: no read
    assert read.value.status_code == 403
    jpeg = samples.image("JPEG")
    blob.upload_blob(jpeg)
    first = complete(base_url, account, created["mediaId"])
    assert first.status_code == 201
    blob.upload_blob(samples.image("JPEG", colour=(0, 0, 255)))  # the staging blob is gone
    eventually(lambda: staged(app, created["mediaId"]) == [])  # removed: the session is settled
    assert complete(base_url, account, created["mediaId"]).json() == first.json()


def test_sessions_are_checked_like_uploads_before_any_url_is_issued(
    base_url: str, account: TenantAccount, other_account: TenantAccount
) -> None:
    assert open_session(base_url, account, contentType="image/bmp").status_code == 415
    assert open_session(base_url, account, fileName="a.png").status_code == 400
    other_tenant = open_session(base_url, account, tenantId=other_account.tenant_id)
    assert other_tenant.status_code == 403
    missing = open_session(base_url, account, phoneNumber="")
    assert missing.status_code == 400


def test_another_tenant_cannot_see_or_complete_a_session(
    base_url: str, account: TenantAccount, other_account: TenantAccount
) -> None:
    created = session(base_url, account)
    response = requests.get(
        f"{base_url}/api/v1/media/{created['mediaId']}", auth=other_account.auth, timeout=10
    )
    assert response.status_code == 404
    assert complete(base_url, other_account, created["mediaId"]).status_code == 404


def test_complete_before_any_put_waits_then_answers_409(
    app: App, base_url: str, account: TenantAccount
) -> None:
    with app_with(app, upload_complete_wait_seconds=0.5):
        created = session(base_url, account)
        started = time.monotonic()
        response = complete(base_url, account, created["mediaId"])
    assert response.status_code == 409 and response.json()["code"] == "upload_pending"
    assert response.headers["Retry-After"] == "2"
    assert 0.5 <= time.monotonic() - started < 5


def test_the_session_row_keeps_the_outcome(app: App, base_url: str, account: TenantAccount) -> None:
    created = session(base_url, account)
    put(created, samples.image("JPEG"))
    assert complete(base_url, account, created["mediaId"]).status_code == 201
    row = app.storage.table(SESSIONS_TABLE).get_entity(created["mediaId"], "session")
    assert row["State"] == "ready" and row["TenantId"] == account.tenant_id
