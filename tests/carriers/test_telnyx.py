"""Telnyx end to end through the local host: a send reaches the fake API as JSON with an
Idempotency-Key, a signed `message.finalized` delivers it; a signed `message.received` reaches
the customer with re-hosted media; tampered, stale, unsigned and replayed events are refused
with nothing stored, and Telnyx's own verifier agrees on every case."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests
from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature

from tests.carrier_fakes import telnyx_event
from tests.carriers.conftest import HANDSET, JPEG, PNG, RECIPIENT, Carriers, dumps
from tests.conftest import TenantAccount, eventually
from tests.webhook_peers import Receiver

pytestmark = pytest.mark.e2e


def post_event(carriers: Carriers, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{carriers.base_url}/api/v1/carriers/telnyx/events", data=body,
                         headers=headers, timeout=10)  # fmt: skip


def received(
    account: TenantAccount, message_id: str, media: list[dict[str, Any]]
) -> dict[str, Any]:
    return telnyx_event("message.received", {
        "id": message_id, "record_type": "message", "direction": "inbound", "type": "MMS",
        "from": {"phone_number": HANDSET, "carrier": "T-Mobile USA", "line_type": "Wireless"},
        "to": [{"phone_number": account.number, "status": "webhook_delivered"}],
        "text": "Here you go", "media": media, "received_at": "2026-01-01T00:00:00.000+00:00",
    })  # fmt: skip


def test_send_with_three_media_then_signed_finalized_is_delivered(
    carriers: Carriers, account: TenantAccount
) -> None:
    carriers.use(account, "telnyx")
    message_id = carriers.send(account)
    sent = carriers.wait_status(account, message_id, "sent")
    [body] = carriers.telnyx.sent
    assert body["to"] == RECIPIENT and body["from"] == account.number
    assert body["media_urls"] == [f"{carriers.media}/p{i}.jpg" for i in range(3)]
    assert body["webhook_url"] == f"{carriers.base_url}/api/v1/carriers/telnyx/events"
    [request] = [s for s in carriers.telnyx.seen if s.method == "POST"]
    assert request.headers["Idempotency-Key"] == message_id
    event = telnyx_event("message.finalized", {
        "id": sent["carrierMessageId"], "record_type": "message", "direction": "outbound",
        "to": [{"phone_number": RECIPIENT, "status": "delivered"}], "errors": [],
    })  # fmt: skip
    raw = dumps(event)
    reply = post_event(carriers, raw, carriers.telnyx_signer.headers(raw))
    assert reply.status_code == 200, reply.text
    carriers.wait_status(account, message_id, "delivered")


def test_delivery_failed_is_undelivered_with_the_providers_code(
    carriers: Carriers, account: TenantAccount
) -> None:
    carriers.use(account, "telnyx")
    message_id = carriers.send(account, media=0)
    sent = carriers.wait_status(account, message_id, "sent")
    raw = dumps(telnyx_event("message.finalized", {
        "id": sent["carrierMessageId"], "to": [{"phone_number": RECIPIENT, "status": "delivery_failed"}],
        "errors": [{"code": "40300", "title": "Blocked as spam", "detail": "..."}],
    }))  # fmt: skip
    assert post_event(carriers, raw, carriers.telnyx_signer.headers(raw)).status_code == 200
    view = carriers.wait_status(account, message_id, "undelivered")
    assert view["failureReason"] == "telnyx:40300 Blocked as spam"


def test_signed_inbound_mms_reaches_the_customer_with_rehosted_media(
    carriers: Carriers, account: TenantAccount, customer: Receiver
) -> None:
    # One served directly, one redirecting to another host (the media host).
    carriers.cdn.redirects["/cdn/moved.jpg"] = f"{carriers.media}/p0.jpg"
    media = [
        {"url": f"{carriers.cdn.url}/cdn/photo.png", "content_type": "image/png", "size": len(PNG)},
        {"url": f"{carriers.cdn.url}/cdn/moved.jpg", "content_type": "image/jpeg", "size": len(JPEG)},
    ]  # fmt: skip
    raw = dumps(received(account, str(uuid.uuid4()), media))
    reply = post_event(carriers, raw, carriers.telnyx_signer.headers(raw))
    assert reply.status_code == 200, reply.text
    eventually(lambda: customer.verified, timeout=20)
    payload = customer.verified[0].payload
    assert payload["from"] == HANDSET and payload["message"] == "Here you go"
    urls = [a["url"] for a in payload["attachments"]]
    assert [requests.get(u, timeout=10).content for u in urls] == [PNG, JPEG]
    # Telnyx media links are signed: no credentials of ours ever go with them.
    assert {s.headers.get("Authorization") for s in carriers.cdn.seen} == {None}


TAMPERS = ["body_changed", "wrong_key", "stale", "future", "unsigned", "no_timestamp", "bad_base64"]


@pytest.mark.parametrize("tamper", TAMPERS)
def test_tampered_events_are_refused_by_us_and_by_telnyx_s_own_verifier(
    carriers: Carriers, account: TenantAccount, tamper: str
) -> None:
    from tests.carrier_fakes import TelnyxSigner

    provider_id = str(uuid.uuid4())
    raw = dumps(received(account, provider_id, []))
    signer = TelnyxSigner() if tamper == "wrong_key" else carriers.telnyx_signer
    at = {"stale": int(time.time()) - 301, "future": int(time.time()) + 301}.get(tamper)
    headers = signer.headers(raw, at=at)
    if tamper == "body_changed":
        raw = json.dumps(json.loads(raw), indent=1).encode()
    elif tamper == "unsigned":
        del headers["telnyx-signature-ed25519"]
    elif tamper == "no_timestamp":
        del headers["telnyx-timestamp"]
    elif tamper == "bad_base64":
        headers["telnyx-signature-ed25519"] = "!!" + headers["telnyx-signature-ed25519"][2:]
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(raw, headers, carriers.telnyx_signer.public_key)
    reply = post_event(carriers, raw, headers)
    assert reply.status_code == 401, reply.text
    assert not carriers.stored_inbound(account, f"telnyx:{provider_id}")


def test_the_oracle_accepts_what_we_accept_and_a_replay_is_409(
    carriers: Carriers, account: TenantAccount
) -> None:
    provider_id = str(uuid.uuid4())
    raw = dumps(received(account, provider_id, []))
    headers = carriers.telnyx_signer.headers(raw)
    verify_webhook_signature(raw, headers, carriers.telnyx_signer.public_key)
    assert post_event(carriers, raw, headers).status_code == 200
    assert carriers.stored_inbound(account, f"telnyx:{provider_id}")
    replay = post_event(carriers, raw, headers)
    assert replay.status_code == 409 and replay.json()["code"] == "replayed"


def test_5xx_is_retried_with_the_same_idempotency_key_and_sent_once(
    carriers: Carriers, account: TenantAccount
) -> None:
    from tests.carrier_fakes import Reply

    carriers.use(account, "telnyx")
    # Three 500s outlast the in-process tries, so the delivery queue retries too.
    carriers.telnyx.script = [Reply.json(500, {"errors": [{"code": "10007"}]})] * 3
    message_id = carriers.send(account, media=0)
    carriers.wait_status(account, message_id, "sent")
    posts = [s for s in carriers.telnyx.seen if s.method == "POST"]
    assert len(posts) == 4
    assert {s.headers["Idempotency-Key"] for s in posts} == {message_id}
    assert len(carriers.telnyx.sent) == 1
