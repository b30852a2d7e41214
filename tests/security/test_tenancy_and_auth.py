"""Cross-tenant access by id, tenantId and phone number, and Basic auth header oddities: the
exact status, never a 5xx, nothing stored."""

from __future__ import annotations

import base64
import uuid

import pytest
import requests

from shared.app import App
from tests import samples
from tests.conftest import TenantAccount
from tests.security.conftest import basic, expect, post_media, stored, upload_body

pytestmark = pytest.mark.e2e

JPEG = samples.image("JPEG")


@pytest.fixture
def their_media(base_url: str, other_account: TenantAccount) -> dict[str, str]:
    body = upload_body(other_account, JPEG)
    created: dict[str, str] = expect(post_media(base_url, other_account, json=body), 201)
    return created


@pytest.fixture
def their_message(base_url: str, other_account: TenantAccount) -> str:
    body = {"from": other_account.number, "to": ["+15559876543"], "body": "private"}
    response = requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=other_account.auth, timeout=30
    )
    message_id: str = expect(response, 202)["messages"][0]["messageId"]
    return message_id


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_another_tenants_media_by_id_is_404_and_untouched(
    base_url: str, app: App, account: TenantAccount, other_account: TenantAccount,
    their_media: dict[str, str], method: str,
) -> None:  # fmt: skip
    before = stored(app, other_account.tenant_id)
    response = requests.request(
        method, f"{base_url}/api/v1/media/{their_media['mediaId']}", auth=account.auth, timeout=10
    )
    expect(response, 404, "media_not_found")
    assert stored(app, other_account.tenant_id) == before
    assert requests.get(their_media["uri"], timeout=10).content == JPEG


@pytest.mark.parametrize(
    "media_id",
    ["..%2F..%2Fetc", "0" * 33, "A" * 32, "%00" * 4, "x" * 2000],
    ids=["encoded-traversal", "too-long", "upper-hex", "nul", "huge"],
)
def test_malformed_media_ids_are_404(base_url: str, account: TenantAccount, media_id: str) -> None:
    response = requests.get(f"{base_url}/api/v1/media/{media_id}", auth=account.auth, timeout=10)
    expect(response, 404)


def test_another_tenants_message_by_id_is_404(
    base_url: str, account: TenantAccount, other_account: TenantAccount, their_message: str
) -> None:
    mine = requests.get(
        f"{base_url}/api/v1/messages/{their_message}", auth=other_account.auth, timeout=10
    )
    expect(mine, 200)
    theirs = requests.get(
        f"{base_url}/api/v1/messages/{their_message}", auth=account.auth, timeout=10
    )
    expect(theirs, 404, "message_not_found")


def test_upload_for_another_tenant_id_is_403_and_stores_nothing(
    base_url: str, app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    before = stored(app, other_account.tenant_id)
    body = upload_body(
        account, JPEG, tenantId=other_account.tenant_id, phoneNumber=other_account.number
    )
    expect(post_media(base_url, account, json=body), 403, "tenant_forbidden")
    assert stored(app, other_account.tenant_id) == before


def test_upload_with_another_tenants_number_is_403_and_stores_nothing(
    base_url: str, app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    before = stored(app, account.tenant_id), stored(app, other_account.tenant_id)
    body = upload_body(account, JPEG, phoneNumber=other_account.number)
    expect(post_media(base_url, account, json=body), 403, "number_not_provisioned")
    assert (stored(app, account.tenant_id), stored(app, other_account.tenant_id)) == before


def test_send_from_another_tenants_number_is_403_and_stores_nothing(
    base_url: str, app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    before = stored(app, account.tenant_id), stored(app, other_account.tenant_id)
    body = {"from": other_account.number, "to": ["+15559876543"], "body": "spoofed"}
    response = requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=account.auth, timeout=10
    )
    expect(response, 403, "number_not_provisioned")
    assert (stored(app, account.tenant_id), stored(app, other_account.tenant_id)) == before


def test_send_with_another_tenants_media_url_is_refused_and_stores_nothing(
    base_url: str, app: App, account: TenantAccount, their_media: dict[str, str]
) -> None:
    before = stored(app, account.tenant_id)
    body = {"from": account.number, "to": ["+15559876543"], "mediaUrls": [their_media["uri"]]}
    response = requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=account.auth, timeout=10
    )
    problem = expect(response, 422, "media_url_rejected")
    assert problem["errors"][0]["reason"] == "media_not_found"
    assert stored(app, account.tenant_id) == before


def _b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


AUTH_HEADERS: list[tuple[str, bytes | None]] = [
    ("missing", None),
    ("no-colon", b"Basic " + _b64(b"user@example.com")),
    ("non-utf8-credentials", b"Basic " + _b64(b"\xff\xfe@example.com:\xc3\x28")),
    ("non-latin1-header-bytes", b"Basic \xff\xfe\xfd"),
    ("ten-kb-header", b"Basic " + _b64(b"user@example.com:" + b"p" * 10_000)),
    ("empty-password", b"Basic " + _b64(b"user@example.com:")),
    ("empty-user", b"Basic " + _b64(b":password")),
    ("wrong-scheme-bearer", b"Bearer eyJhbGciOiJub25lIn0.e30."),
    ("scheme-only", b"Basic"),
    ("not-base64", b"Basic %%%not-base64%%%"),
    ("url-safe-base64", b"Basic " + base64.urlsafe_b64encode(b"u?>@example.com:p>>?")),
    ("table-key-characters", b"Basic " + _b64(b"a/b\\c#d?e@example.com:password")),
    ("odata-quote", b"Basic " + _b64(b"x' or PartitionKey ne '@example.com:password")),
    ("control-characters", b"Basic " + _b64(b"\x01\x7f@example.com:password")),
    ("long-email", b"Basic " + _b64(b"a" * 1000 + b"@example.com:password")),
]


@pytest.mark.parametrize(("header"), [pytest.param(h, id=i) for i, h in AUTH_HEADERS])
def test_basic_auth_oddities_are_401_with_a_challenge(
    base_url: str, app: App, account: TenantAccount, header: bytes | None
) -> None:
    before = stored(app, account.tenant_id)
    headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    response = requests.post(
        f"{base_url}/api/v1/media", json=upload_body(account, JPEG), headers=headers, timeout=10
    )
    expect(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert stored(app, account.tenant_id) == before


def test_correct_user_with_a_wrong_tenant_guid_format_is_400_not_500(
    base_url: str, account: TenantAccount
) -> None:
    body = upload_body(account, JPEG, tenantId=str(uuid.uuid4()).upper() + "'--")
    expect(post_media(base_url, account, json=body), 400, "validation_failed")


def test_valid_credentials_in_a_lowercase_scheme_still_work(
    base_url: str, account: TenantAccount
) -> None:
    header = basic(f"{account.email}:{account.password}".encode()).replace("Basic", "basic")
    response = requests.get(
        f"{base_url}/api/v1/media/{'0' * 32}", headers={"Authorization": header}, timeout=10
    )
    expect(response, 404, "media_not_found")
