"""Bandwidth end to end through the local host: a send reaches the fake API as JSON with an
OAuth token (fetched once, then cached), `applicationId`, `to` as an array and our id as `tag`;
a `message-delivered` callback delivers it; a `message-received` callback reaches the customer
with media fetched with the token (never sent on to the CDN); callbacks without the right Basic
credentials are refused with nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.carrier_fakes import (
    BANDWIDTH_APPLICATION,
    BANDWIDTH_CALLBACK_PASSWORD,
    BANDWIDTH_CALLBACK_USER,
    bandwidth_callback,
    basic,
)
from tests.carriers.conftest import HANDSET, JPEG, PNG, RECIPIENT, Carriers, new_id
from tests.conftest import TenantAccount, eventually
from tests.webhook_peers import Receiver

pytestmark = pytest.mark.e2e
CREDENTIALS = basic(BANDWIDTH_CALLBACK_USER, BANDWIDTH_CALLBACK_PASSWORD)


def post(carriers: Carriers, path: str, callbacks: list[dict[str, Any]],
         authorization: str | None = CREDENTIALS) -> requests.Response:  # fmt: skip
    headers = {"Authorization": authorization} if authorization else {}
    return requests.post(f"{carriers.base_url}/api/v1/carriers/bandwidth/{path}",
                         json=callbacks, headers=headers, timeout=10)  # fmt: skip


def test_send_with_three_media_then_delivered_callback(
    carriers: Carriers, account: TenantAccount
) -> None:
    carriers.use(account, "bandwidth")
    first = carriers.send(account)
    second = carriers.send(account, media=0)
    sent = carriers.wait_status(account, first, "sent")
    carriers.wait_status(account, second, "sent")
    body = next(b for b in carriers.bandwidth.sent if b["tag"] == first)
    assert body["applicationId"] == BANDWIDTH_APPLICATION and body["to"] == [RECIPIENT]
    assert body["from"] == account.number
    assert body["media"] == [f"{carriers.media}/p{i}.jpg" for i in range(3)]
    assert carriers.bandwidth.tokens_issued == 1  # cached for the second send
    message = {"id": sent["carrierMessageId"], "from": account.number, "to": [RECIPIENT],
               "tag": first, "owner": account.number}  # fmt: skip
    reply = post(carriers, "status", [bandwidth_callback("message-delivered", RECIPIENT, message)])
    assert reply.status_code == 200, reply.text
    carriers.wait_status(account, first, "delivered")


def test_failed_callback_keeps_the_providers_code(
    carriers: Carriers, account: TenantAccount
) -> None:
    carriers.use(account, "bandwidth")
    message_id = carriers.send(account, media=0)
    sent = carriers.wait_status(account, message_id, "sent")
    message = {"id": sent["carrierMessageId"], "from": account.number, "to": [RECIPIENT],
               "tag": message_id}  # fmt: skip
    failed = bandwidth_callback(
        "message-failed",
        RECIPIENT,
        message,
        errorCode=4720,
        description="Carrier Rejected as Invalid Destination Address",
    )
    assert post(carriers, "status", [failed]).status_code == 200
    view = carriers.wait_status(account, message_id, "failed")
    assert view["failureReason"] == "bandwidth:4720 Carrier Rejected as Invalid Destination Address"


def test_inbound_mms_reaches_the_customer_with_media_fetched_with_the_token(
    carriers: Carriers, account: TenantAccount, customer: Receiver
) -> None:
    fake = carriers.bandwidth
    direct, redirected = fake.media_url("photo.jpg"), fake.media_url("photo.png")
    from urllib.parse import urlsplit

    fake.media[urlsplit(direct).path] = (JPEG, "image/jpeg")
    fake.redirects[urlsplit(redirected).path] = f"{carriers.cdn.url}/cdn/photo.png"
    smil = fake.media_url("0.smil")
    message = {"id": new_id(), "from": HANDSET, "to": [account.number], "owner": account.number,
               "text": "Here you go", "media": [direct, redirected, smil]}  # fmt: skip
    reply = post(
        carriers, "inbound", [bandwidth_callback("message-received", account.number, message)]
    )
    assert reply.status_code == 200, reply.text
    eventually(lambda: customer.verified, timeout=20)
    payload = customer.verified[0].payload
    assert [a["name"] for a in payload["attachments"]] == ["photo.jpg", "photo.png"]
    assert [requests.get(a["url"], timeout=10).content for a in payload["attachments"]] == [
        JPEG,
        PNG,
    ]
    assert [s.headers.get("Authorization") for s in carriers.cdn.seen] == [None]


@pytest.mark.parametrize("authorization", [
    None, basic(BANDWIDTH_CALLBACK_USER, "wrong-password"), basic("someone", BANDWIDTH_CALLBACK_PASSWORD),
    "Bearer " + BANDWIDTH_CALLBACK_PASSWORD, "Basic !!!",
])  # fmt: skip
def test_wrong_or_missing_credentials_are_401_and_nothing_is_stored(
    carriers: Carriers, account: TenantAccount, authorization: str | None
) -> None:
    provider_id = new_id()
    message = {
        "id": provider_id,
        "from": HANDSET,
        "to": [account.number],
        "text": "hi",
        "media": [],
    }
    callbacks = [bandwidth_callback("message-received", account.number, message)]
    reply = post(carriers, "inbound", callbacks, authorization)
    assert reply.status_code == 401, reply.text
    assert reply.headers["WWW-Authenticate"].startswith("Basic")
    assert not carriers.stored_inbound(account, f"bandwidth:{provider_id}")


def test_status_callback_with_wrong_credentials_changes_nothing(
    carriers: Carriers, account: TenantAccount
) -> None:
    carriers.use(account, "bandwidth")
    message_id = carriers.send(account, media=0)
    sent = carriers.wait_status(account, message_id, "sent")
    message = {"id": sent["carrierMessageId"], "from": account.number, "tag": message_id}
    forged = [bandwidth_callback("message-failed", RECIPIENT, message, errorCode=4720)]
    reply = post(carriers, "status", forged, basic(BANDWIDTH_CALLBACK_USER, "guess-0123456789"))
    assert reply.status_code == 401
    assert carriers.message(account, message_id)["status"] == "sent"
