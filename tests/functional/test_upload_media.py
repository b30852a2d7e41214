"""POST/GET/DELETE /api/v1/media through each function's `main`, on Azurite."""

import io
import json
from typing import Any

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from PIL import Image

import media_item
import upload_media
from shared.app import App
from shared.media.store import MEDIA_TABLE
from tests import samples
from tests.conftest import TenantAccount, http_request
from tests.context import invocation_context


def upload_body(account: TenantAccount, data: bytes | list[int], **overrides: Any) -> bytes:
    return json.dumps(account.upload_json(data, **overrides)).encode()


def post(account: TenantAccount, body: bytes, headers: dict[str, str] | None = None) -> Any:
    request = http_request(
        "POST", "/api/v1/media", body=body,
        headers={"Authorization": account.authorization, **(headers or {})},
    )  # fmt: skip
    return upload_media.main(request, invocation_context())


def item(account: TenantAccount, media_id: str, method: str = "GET") -> Any:
    request = http_request(
        method, f"/api/v1/media/{media_id}", route_params={"mediaId": media_id},
        headers={"Authorization": account.authorization},
    )  # fmt: skip
    return media_item.main(request, invocation_context())


def blob_names(app: App, media_id: str) -> list[str]:
    container = app.storage.blobs.get_container_client(app.settings.media_container)
    return [b.name for b in container.list_blobs(name_starts_with=f"{media_id}/")]


def body_of(response: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response.get_body())
    return parsed


def test_upload_stores_blob_and_record_and_answers_201(app: App, account: TenantAccount) -> None:
    jpeg = samples.image("JPEG")
    response = post(account, upload_body(account, jpeg))
    assert response.status_code == 201, response.get_body()
    body = body_of(response)
    assert body["fileName"] == "product-image.jpg"
    assert body["contentType"] == "image/jpeg"
    assert body["size"] == len(jpeg)
    assert response.headers["Location"] == f"/api/v1/media/{body['mediaId']}"
    assert blob_names(app, body["mediaId"]) == [f"{body['mediaId']}/product-image.jpg"]
    entity = app.storage.table(MEDIA_TABLE).get_entity(account.tenant_id, body["mediaId"])
    assert entity["sha256"] == body["sha256"] and entity["optimizationState"] == "not_needed"
    fetched = requests.get(body["uri"], timeout=10)
    assert fetched.content == jpeg and fetched.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize(("name", "mime", "data"), samples.ALL_TYPES)
def test_every_guide_type_uploads_with_its_true_content_type(
    app: App, account: TenantAccount, name: str, mime: str, data: bytes
) -> None:
    response = post(account, upload_body(account, data, fileName=name, contentType=mime))
    assert response.status_code == 201, response.get_body()
    fetched = requests.get(body_of(response)["uri"], timeout=10)
    assert fetched.headers["Content-Type"] == mime and fetched.content == data


def test_alias_is_stored_under_the_canonical_type(app: App, account: TenantAccount) -> None:
    wav = samples.riff(b"WAVE")
    response = post(account, upload_body(account, wav, fileName="v.wav", contentType="audio/x-wav"))
    assert body_of(response)["contentType"] == "audio/wav"


def test_heic_is_converted_to_jpeg_and_says_so(app: App, account: TenantAccount) -> None:
    heic = samples.image("HEIF", size=(80, 60))
    response = post(
        account, upload_body(account, heic, fileName="IMG_0001.HEIC", contentType="image/heic")
    )
    body = body_of(response)
    assert response.status_code == 201
    assert body["convertedFrom"] == "image/heic"
    assert body["contentType"] == "image/jpeg" and body["fileName"] == "IMG_0001.jpg"
    fetched = requests.get(body["uri"], timeout=10)
    assert Image.open(io.BytesIO(fetched.content)).format == "JPEG"


def test_large_or_oversized_images_are_pending_optimisation(
    app: App, account: TenantAccount
) -> None:
    big_side = samples.image("PNG", size=(1025, 10))
    assert body_of(
        post(account, upload_body(account, big_side, fileName="w.png", contentType="image/png"))
    )["optimization"] == {"state": "pending"}
    at_side = samples.image("PNG", size=(1024, 10))
    assert body_of(
        post(account, upload_body(account, at_side, fileName="w.png", contentType="image/png"))
    )["optimization"] == {"state": "not_needed"}
    big_pdf = samples.PDF + b"%" * (2 * 1024 * 1024)
    response = post(
        account, upload_body(account, big_pdf, fileName="d.pdf", contentType="application/pdf")
    )
    assert body_of(response)["optimization"] == {
        "state": "not_needed"
    }  # documents are never rewritten


def test_missing_credentials_are_401(app: App) -> None:
    request = http_request("POST", "/api/v1/media", body=b"{}")
    response = upload_media.main(request, invocation_context())
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_another_tenants_id_is_403_and_stores_nothing(
    app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    body = upload_body(account, samples.image("JPEG"), tenantId=other_account.tenant_id)
    response = post(account, body)
    assert response.status_code == 403
    assert body_of(response)["code"] == "tenant_forbidden"


def test_a_number_not_provisioned_for_the_tenant_is_403(
    app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    response = post(
        account, upload_body(account, samples.image("JPEG"), phoneNumber=other_account.number)
    )
    assert response.status_code == 403
    assert body_of(response)["code"] == "number_not_provisioned"


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"contentType": "image/bmp"}, 415, "unsupported_media_type"),
        ({"contentType": "image/png", "fileName": "a.png"}, 415, "content_type_mismatch"),
        ({"fileName": "a.png"}, 400, "extension_mismatch"),
        ({"tenantId": "nope"}, 400, "validation_failed"),
    ],
)
def test_rejections_store_nothing(
    app: App, account: TenantAccount, overrides: dict[str, Any], status: int, code: str
) -> None:
    table = app.storage.table(MEDIA_TABLE)
    before = len(
        list(table.query_entities("PartitionKey eq @t", parameters={"t": account.tenant_id}))
    )
    response = post(account, upload_body(account, samples.image("JPEG"), **overrides))
    assert response.status_code == status
    assert body_of(response)["code"] == code
    after = len(
        list(table.query_entities("PartitionKey eq @t", parameters={"t": account.tenant_id}))
    )
    assert after == before


def test_unsupported_type_detail_is_the_guides_text(app: App, account: TenantAccount) -> None:
    response = post(
        account, upload_body(account, b"BM....", fileName="a.bmp", contentType="image/bmp")
    )
    assert body_of(response)["detail"] == "Unsupported media type: image/bmp"


def test_a_failed_record_write_leaves_no_orphan_blob(
    app: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed = "f" * 32
    app.storage.table(MEDIA_TABLE).upsert_entity(
        {"PartitionKey": account.tenant_id, "RowKey": fixed}
    )
    monkeypatch.setattr("shared.media.store.secrets.token_hex", lambda n: fixed)
    response = post(account, upload_body(account, samples.image("JPEG")))
    assert response.status_code == 500
    assert blob_names(app, fixed) == []


def test_get_returns_the_record_and_hides_other_tenants_media(
    app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    created = body_of(post(account, upload_body(account, samples.image("JPEG"))))
    got = item(account, created["mediaId"])
    assert got.status_code == 200
    record = body_of(got)
    assert record["sha256"] == created["sha256"] and record["optimization"]["state"] == "not_needed"
    assert record["phoneNumber"] == account.number and record["uri"] == created["uri"]
    assert item(other_account, created["mediaId"]).status_code == 404
    assert item(account, "not-an-id").status_code == 404


def test_delete_removes_blob_and_record_and_the_url_then_404s(
    app: App, account: TenantAccount
) -> None:
    created = body_of(post(account, upload_body(account, samples.image("JPEG"))))
    assert requests.get(created["uri"], timeout=10).status_code == 200
    assert item(account, created["mediaId"], "DELETE").status_code == 204
    assert requests.get(created["uri"], timeout=10).status_code == 404
    with pytest.raises(ResourceNotFoundError):
        app.storage.table(MEDIA_TABLE).get_entity(account.tenant_id, created["mediaId"])
    assert item(account, created["mediaId"], "DELETE").status_code == 404
    assert item(account, created["mediaId"]).status_code == 404


def test_other_tenant_cannot_delete(
    app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    created = body_of(post(account, upload_body(account, samples.image("JPEG"))))
    assert item(other_account, created["mediaId"], "DELETE").status_code == 404
    assert requests.get(created["uri"], timeout=10).status_code == 200


def test_idempotency_key_replays_the_first_response_without_storing_twice(
    app: App, account: TenantAccount
) -> None:
    body = upload_body(account, samples.image("JPEG"))
    first = post(account, body, {"Idempotency-Key": "abc-123"})
    second = post(account, body, {"Idempotency-Key": "abc-123"})
    assert first.status_code == second.status_code == 201
    assert second.get_body() == first.get_body()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    table = app.storage.table(MEDIA_TABLE)
    rows = list(table.query_entities("PartitionKey eq @t", parameters={"t": account.tenant_id}))
    assert len(rows) == 1


def test_idempotency_key_with_a_different_body_is_422(app: App, account: TenantAccount) -> None:
    post(account, upload_body(account, samples.image("JPEG")), {"Idempotency-Key": "k1"})
    other = upload_body(account, samples.image("JPEG", colour=(1, 2, 3)))
    response = post(account, other, {"Idempotency-Key": "k1"})
    assert response.status_code == 422
    assert body_of(response)["code"] == "idempotency_key_reused"


def test_failed_request_does_not_burn_its_idempotency_key(app: App, account: TenantAccount) -> None:
    bad = upload_body(account, samples.image("JPEG"), contentType="image/bmp")
    assert post(account, bad, {"Idempotency-Key": "k2"}).status_code == 415
    good = upload_body(account, samples.image("JPEG"))
    assert post(account, good, {"Idempotency-Key": "k2"}).status_code == 201
