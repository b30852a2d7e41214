"""Following a sent message: GET by id, signed status callbacks, and carrier delivery reports."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shared.app import App
from shared.settings import Settings
from tests.conftest import TenantAccount, app_with, eventually
from tests.peers import FakeCarrier
from tests.webhook_peers import CARRIER_SECRET, Receiver, carrier_headers, receiving


@pytest.fixture
def status_app(app: App, settings: Settings) -> Iterator[App]:
    with app_with(
        app, carrier_webhook_secret=CARRIER_SECRET, webhook_retry_schedule_seconds=(1,),
        webhook_retry_jitter=0.0,
    ) as changed:  # fmt: skip
        yield changed


def send(base_url: str, account: TenantAccount, **fields: Any) -> str:
    body = {"from": account.number, "to": ["+15559876543"], "body": "Hello", **fields}
    response = requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=account.auth, timeout=30
    )
    assert response.status_code == 202, response.text
    message_id: str = response.json()["messages"][0]["messageId"]
    return message_id


def get(base_url: str, account: TenantAccount, message_id: str) -> requests.Response:
    return requests.get(f"{base_url}/api/v1/messages/{message_id}", auth=account.auth, timeout=10)


def report(
    base_url: str, account: TenantAccount, message_id: str, status: str, **sign: Any
) -> requests.Response:
    body = json.dumps({"messageId": message_id, "from": account.number, "status": status}).encode()
    return requests.post(f"{base_url}/api/v1/webhooks/carrier-status", data=body,
                         headers=carrier_headers(body, **sign), timeout=10)  # fmt: skip


def test_get_shows_an_outbound_message_to_its_owner_only(
    base_url: str, app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    message_id = send(base_url, account)
    view = eventually(
        lambda: (r := get(base_url, account, message_id).json())["status"] == "delivered" and r
    )
    assert view["direction"] == "outbound" and view["to"] == "+15559876543"
    assert [h["status"] for h in view["statusHistory"]] == [
        "queued",
        "sending",
        "sent",
        "delivered",
    ]
    assert get(base_url, other_account, message_id).status_code == 404
    assert get(base_url, account, "not-a-uuid").status_code == 404


def test_status_callback_receives_each_change_signed(
    base_url: str, status_app: App, account: TenantAccount
) -> None:
    secret = status_app.directory.require_tenant(account.tenant_id).webhook_secrets[0]
    with receiving(Receiver(secret)) as receiver:
        message_id = send(base_url, account, statusCallback=receiver.url)
        eventually(lambda: len(receiver.verified) >= 2)
    # Webhooks are independent deliveries and may arrive out of order; the timestamp orders them.
    by_time = sorted(receiver.verified, key=lambda r: r.payload["timestamp"])
    assert [r.payload["status"] for r in by_time] == ["sending", "delivered"]
    assert all(r.payload["messageId"] == message_id for r in receiver.verified)
    assert not [r for r in receiver.received if r.error]


def test_status_callback_must_be_https(base_url: str, account: TenantAccount) -> None:
    body = {
        "from": account.number,
        "to": ["+15559876543"],
        "body": "x",
        "statusCallback": "http://example.com/cb",
    }
    response = requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=account.auth, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "statusCallback"


def test_carrier_reports_move_status_forward_only(
    base_url: str, status_app: App, account: TenantAccount
) -> None:
    carrier = FakeCarrier()
    status_app.directory.set_number_carrier(account.tenant_id, account.number, "generic")
    with (
        carrier.running() as url,
        app_with(status_app, carrier_gateway_url=url, carrier_gateway_secret=carrier.secret),
    ):
        message_id = send(base_url, account)
        eventually(lambda: get(base_url, account, message_id).json()["status"] == "sent")
    assert report(base_url, account, message_id, "delivered").status_code == 200
    assert get(base_url, account, message_id).json()["status"] == "delivered"
    late = report(base_url, account, message_id, "sent")
    assert late.status_code == 200 and late.json()["status"] == "delivered"
    assert get(base_url, account, message_id).json()["status"] == "delivered"


def test_carrier_report_with_a_bad_signature_is_401_and_changes_nothing(
    base_url: str, status_app: App, account: TenantAccount
) -> None:
    message_id = send(base_url, account, to=["+15550004444"])
    eventually(lambda: get(base_url, account, message_id).json()["status"] == "delivered")
    forged = report(base_url, account, message_id, "failed", secret="not-the-secret")
    assert forged.status_code == 401
    stale = report(base_url, account, message_id, "failed", at=1_000_000)
    assert stale.status_code == 401
    assert get(base_url, account, message_id).json()["status"] == "delivered"
