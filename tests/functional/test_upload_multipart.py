"""POST /api/v1/media as multipart/form-data through `upload_media.main`: the JSON upload's rules,
limits, texts, idempotency and 201 body, with the file sent as raw bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from urllib3 import encode_multipart_formdata

import upload_media
from shared.app import App
from shared.media.store import MEDIA_TABLE
from tests import samples
from tests.conftest import TenantAccount, http_request

LIMIT = 5 * 1024 * 1024
JPEG = samples.image("JPEG")


def form(
    account: TenantAccount,
    data: bytes = JPEG,
    *,
    filename: str | None = "photo.jpg",
    part_type: str | None = "image/jpeg",
    **fields: str | None,
) -> tuple[bytes, str]:
    """A form like `curl -F file=@photo.jpg -F phoneNumber=... -F tenantId=...`; a field given
    as None is left out."""
    values: dict[str, str | None] = {
        "phoneNumber": account.number, "tenantId": account.tenant_id, **fields
    }  # fmt: skip
    parts: list[Any] = [(k, v) for k, v in values.items() if v is not None]
    file_part: tuple[Any, ...] = (filename, data, part_type) if part_type else (filename, data)
    parts.append(("file", file_part))
    body, content_type = encode_multipart_formdata(parts)
    if part_type is None:  # urllib3 names a type for every file: take it out again
        body = body.replace(b"Content-Type: application/octet-stream\r\n", b"", 1)
    return body, content_type


def post_form(
    account: TenantAccount, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> Any:
    request = http_request(
        "POST", "/api/v1/media", body=body,
        headers={"Authorization": account.authorization, "Content-Type": content_type,
                 "Content-Length": str(len(body)), **(headers or {})},
    )  # fmt: skip
    return upload_media.main(request, None)  # type: ignore[arg-type]


def body_of(response: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response.get_body())
    return parsed


def test_form_upload_answers_the_json_uploads_201(app: App, account: TenantAccount) -> None:
    response = post_form(account, *form(account))
    assert response.status_code == 201, response.get_body()
    body = body_of(response)
    assert set(body) == {
        "uri", "fileName", "mediaId", "contentType", "size", "sha256", "optimization"
    }  # fmt: skip
    assert body["fileName"] == "photo.jpg" and body["contentType"] == "image/jpeg"
    assert body["size"] == len(JPEG)
    assert response.headers["Location"] == f"/api/v1/media/{body['mediaId']}"
    entity = app.storage.table(MEDIA_TABLE).get_entity(account.tenant_id, body["mediaId"])
    assert entity["sha256"] == body["sha256"]
    fetched = requests.get(body["uri"], timeout=10)
    assert fetched.content == JPEG and fetched.headers["Content-Type"] == "image/jpeg"


def test_file_name_and_content_type_fields_win_over_the_parts(
    app: App, account: TenantAccount
) -> None:
    body, content_type = form(
        account, filename="IMG_0001", part_type="application/octet-stream",
        fileName="holiday.jpg", contentType="image/jpg",
    )  # fmt: skip
    response = post_form(account, body, content_type)
    assert response.status_code == 201, response.get_body()
    assert body_of(response)["fileName"] == "holiday.jpg"
    assert body_of(response)["contentType"] == "image/jpeg"


def test_five_mb_exactly_is_accepted_and_one_byte_more_is_413(
    app: App, account: TenantAccount
) -> None:
    exact = JPEG + b"\0" * (LIMIT - len(JPEG))
    response = post_form(account, *form(account, exact))
    assert response.status_code == 201, response.get_body()
    assert body_of(response)["size"] == LIMIT
    over = post_form(account, *form(account, exact + b"\0"))
    assert over.status_code == 413
    assert body_of(over)["detail"] == "Media file exceeds maximum size of 5MB"


def test_a_declared_length_that_cannot_fit_is_413_before_the_body_is_read(
    app: App, account: TenantAccount
) -> None:
    body, content_type = form(account)
    request = http_request(
        "POST", "/api/v1/media", body=body,
        headers={"Authorization": account.authorization, "Content-Type": content_type,
                 "Content-Length": str(LIMIT + 70 * 1024)},
    )  # fmt: skip
    response = upload_media.main(request, None)  # type: ignore[arg-type]
    assert response.status_code == 413
    assert body_of(response)["code"] == "media_too_large"


def test_a_lying_type_is_415_naming_both(app: App, account: TenantAccount) -> None:
    response = post_form(account, *form(account, samples.image("PNG")))
    assert response.status_code == 415
    assert body_of(response)["detail"] == (
        "Declared content type image/jpeg does not match the file content (image/png)"
    )


def test_an_unsupported_part_type_is_415_with_the_guides_text(
    app: App, account: TenantAccount
) -> None:
    response = post_form(account, *form(account, part_type="image/bmp", filename="a.bmp"))
    assert response.status_code == 415
    assert body_of(response)["detail"] == "Unsupported media type: image/bmp"


def test_missing_fields_are_400_naming_each(app: App, account: TenantAccount) -> None:
    body, content_type = form(
        account, filename=None, part_type=None, phoneNumber=None, tenantId="nope"
    )
    response = post_form(account, body, content_type)
    assert response.status_code == 400
    fields = [e["field"] for e in body_of(response)["errors"]]
    assert fields == ["phoneNumber", "fileName", "contentType", "tenantId"]


def test_no_file_part_is_400(app: App, account: TenantAccount) -> None:
    body, content_type = encode_multipart_formdata(
        {"phoneNumber": account.number, "tenantId": account.tenant_id}
    )
    response = post_form(account, body, content_type)
    assert response.status_code == 400
    assert body_of(response)["errors"][-1] == {"field": "file", "message": "is required"}


def test_two_file_parts_are_400(app: App, account: TenantAccount) -> None:
    body, content_type = encode_multipart_formdata(
        [("phoneNumber", account.number), ("tenantId", account.tenant_id),
         ("file", ("a.jpg", JPEG, "image/jpeg")), ("file", ("b.jpg", JPEG, "image/jpeg"))]
    )  # fmt: skip
    response = post_form(account, body, content_type)
    assert response.status_code == 400
    assert body_of(response)["errors"][0]["field"] == "file"


def test_an_empty_file_is_400(app: App, account: TenantAccount) -> None:
    response = post_form(account, *form(account, b""))
    assert response.status_code == 400
    assert body_of(response)["code"] == "empty_file"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda body: body[: len(body) // 2],  # cut short: no closing boundary
        lambda body: body.replace(b"Content-Disposition", b"Content-Dispositio", 1),
    ],
)
def test_a_malformed_form_is_400(app: App, account: TenantAccount, mangle: Any) -> None:
    body, content_type = form(account)
    response = post_form(account, mangle(body), content_type)
    assert response.status_code == 400
    assert body_of(response)["code"] == "malformed_multipart"


def test_a_form_without_a_boundary_is_400(app: App, account: TenantAccount) -> None:
    body, _ = form(account)
    response = post_form(account, body, "multipart/form-data")
    assert response.status_code == 400
    assert body_of(response)["code"] == "malformed_multipart"


def test_duplicate_fields_are_400(app: App, account: TenantAccount) -> None:
    body, content_type = encode_multipart_formdata(
        [("phoneNumber", account.number), ("phoneNumber", "+15550000000"),
         ("tenantId", account.tenant_id), ("file", ("a.jpg", JPEG, "image/jpeg"))]
    )  # fmt: skip
    response = post_form(account, body, content_type)
    assert response.status_code == 400
    assert body_of(response)["code"] == "duplicate_key"


def test_another_tenant_is_403(
    app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    body, content_type = form(account, tenantId=other_account.tenant_id)
    response = post_form(account, body, content_type)
    assert response.status_code == 403


def test_heic_is_converted_as_in_the_json_upload(app: App, account: TenantAccount) -> None:
    heic = samples.image("HEIF", size=(80, 60))
    response = post_form(
        account, *form(account, heic, filename="IMG_0001.HEIC", part_type="image/heic")
    )
    assert response.status_code == 201, response.get_body()
    body = body_of(response)
    assert body["convertedFrom"] == "image/heic" and body["fileName"] == "IMG_0001.jpg"


def test_idempotency_key_replays_across_boundaries_and_refuses_another_file(
    app: App, account: TenantAccount
) -> None:
    first = post_form(account, *form(account), {"Idempotency-Key": "form-1"})
    assert first.status_code == 201
    again = post_form(account, *form(account), {"Idempotency-Key": "form-1"})  # new boundary
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert body_of(again) == body_of(first)
    other = post_form(account, *form(account, JPEG + b"\0"), {"Idempotency-Key": "form-1"})
    assert other.status_code == 422
