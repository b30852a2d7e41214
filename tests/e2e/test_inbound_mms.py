"""Inbound MMS end to end over real HTTP through the local host and its queue triggers: a signed
carrier event, attachments from a local media server, and a local customer receiver that
verifies every webhook with the `standardwebhooks` library."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shared import admin
from shared.app import App
from tests import samples
from tests.conftest import TenantAccount, app_with, eventually
from tests.webhook_peers import (
    CARRIER_SECRET,
    Receiver,
    carrier_headers,
    media_server,
    post_inbound,
    receiving,
    sample_event,
)
from tools.azurite import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def inbound_app(app: App, base_url: str) -> Iterator[App]:
    """The app the host serves, with a carrier secret and a retry schedule of seconds."""
    with app_with(
        app, carrier_webhook_secret=CARRIER_SECRET, webhook_retry_schedule_seconds=(1, 1),
        webhook_retry_jitter=0.0,
    ) as changed:  # fmt: skip
        yield changed


def message(base_url: str, account: TenantAccount, message_id: str) -> dict[str, Any]:
    response = requests.get(
        f"{base_url}/api/v1/messages/{message_id}", auth=account.auth, timeout=10
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def webhook_state(base_url: str, account: TenantAccount, message_id: str) -> str | None:
    hook = message(base_url, account, message_id)["webhook"]
    return None if hook is None else str(hook["state"])


def subscribe(app: App, account: TenantAccount, receiver: Receiver) -> None:
    tenant = app.directory.set_webhook(account.tenant_id, receiver.url)
    receiver.secret = tenant.webhook_secrets[0]


def new_event(account: TenantAccount, **overrides: Any) -> dict[str, Any]:
    return sample_event(to=account.number, messageId=f"SM{uuid.uuid4().hex}", **overrides)


def test_signed_mms_reaches_the_customer_with_rehosted_urls(
    inbound_app: App, base_url: str, account: TenantAccount
) -> None:
    png, pdf = samples.image("PNG"), samples.PDF
    files = {"/m/1": (png, "image/png"), "/m/2": (pdf, "application/pdf")}
    with media_server(files) as media, receiving(Receiver(secret="")) as receiver:
        subscribe(inbound_app, account, receiver)
        event = new_event(account, attachments=[
            {"name": "logo.png", "url": f"{media}/m/1", "contentType": "image/png", "size": len(png)},
            {"name": "terms.pdf", "url": f"{media}/m/2", "contentType": "application/pdf"},
        ])  # fmt: skip
        started = time.perf_counter()
        response = post_inbound(base_url, event)
        assert response.status_code == 200, response.text
        assert time.perf_counter() - started < 1.0  # acknowledged before any download
        eventually(lambda: receiver.verified)
    [delivery] = receiver.verified
    payload = delivery.payload
    assert payload["messageId"] == response.json()["messageId"]
    assert payload["to"] == account.number and payload["from"] == event["from"]
    assert [a["name"] for a in payload["attachments"]] == ["logo.png", "terms.pdf"]
    for attachment, data in zip(payload["attachments"], (png, pdf), strict=True):
        assert not attachment["url"].startswith(media)
        fetched = requests.get(attachment["url"], timeout=10)
        assert fetched.content == data
        assert fetched.headers["Content-Type"] == attachment["contentType"]
    shown = message(base_url, account, payload["messageId"])
    assert shown["direction"] == "inbound" and len(shown["attachments"]) == 2
    assert shown["webhook"]["webhookId"] == delivery.headers["webhook-id"]


@pytest.mark.parametrize("tamper", ["bad_signature", "stale_timestamp", "reserialised_body"])
def test_tampered_events_are_401(
    inbound_app: App, base_url: str, account: TenantAccount, tamper: str
) -> None:
    event = new_event(account, attachments=[])
    body = json.dumps(event, indent=1).encode()
    headers = carrier_headers(body)
    if tamper == "bad_signature":
        headers = carrier_headers(body, secret="guessed")
    elif tamper == "stale_timestamp":
        headers = carrier_headers(body, at=int(time.time()) - 600)
    else:
        body = json.dumps(json.loads(body), separators=(",", ":")).encode()
    response = requests.post(
        f"{base_url}/api/v1/webhooks/inbound", data=body, headers=headers, timeout=10
    )
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    # Nothing was stored: the same event, properly signed, is new.
    assert post_inbound(base_url, event).json()["duplicate"] is False


def test_unknown_number_is_404(inbound_app: App, base_url: str) -> None:
    response = post_inbound(base_url, sample_event(to="+15550000002", attachments=[]))
    assert response.status_code == 404
    assert response.json()["code"] == "number_not_provisioned"


def test_replay_is_processed_once(inbound_app: App, base_url: str, account: TenantAccount) -> None:
    with receiving(Receiver(secret="")) as receiver:
        subscribe(inbound_app, account, receiver)
        event = new_event(account, attachments=[])
        replies = [post_inbound(base_url, event) for _ in range(3)]
        assert [r.status_code for r in replies] == [200, 200, 200]
        assert [r.json()["duplicate"] for r in replies] == [False, True, True]
        eventually(lambda: receiver.verified)
        time.sleep(0.5)  # room for a wrong second delivery to show up
    assert len(receiver.received) == 1


def test_failed_attachments_are_reported_one_by_one(
    inbound_app: App, base_url: str, account: TenantAccount
) -> None:
    jpeg = samples.image("JPEG")
    files = {
        "/ok.jpg": (jpeg, "image/jpeg"),
        "/big.jpg": (b"\xff\xd8\xff" + bytes(5 * 1024 * 1024), "image/jpeg"),
        "/fake.jpg": (b"this is not a jpeg", "image/jpeg"),
        "/pic.bmp": (b"BM" + bytes(64), "image/bmp"),
    }
    with media_server(files) as media, receiving(Receiver(secret="")) as receiver:
        subscribe(inbound_app, account, receiver)
        attachments = [
            {"name": "ok.jpg", "url": f"{media}/ok.jpg", "contentType": "image/jpeg"},
            {"name": "big.jpg", "url": f"{media}/big.jpg", "contentType": "image/jpeg"},
            {"name": "fake.jpg", "url": f"{media}/fake.jpg", "contentType": "image/jpeg"},
            {"name": "pic.bmp", "url": f"{media}/pic.bmp", "contentType": "image/bmp"},
            {"name": "meta", "url": "https://169.254.169.254/latest/meta-data", "contentType": "text/plain"},
            {"name": "lan.jpg", "url": "https://10.0.0.7/lan.jpg", "contentType": "image/jpeg"},
        ]  # fmt: skip
        assert (
            post_inbound(base_url, new_event(account, attachments=attachments)).status_code == 200
        )
        eventually(lambda: receiver.verified)
    payload = receiver.verified[0].payload
    assert [a["name"] for a in payload["attachments"]] == ["ok.jpg"]
    errors = {f["name"]: f["error"]["code"] for f in payload["failedAttachments"]}
    assert errors == {
        "big.jpg": "media_too_large",
        "fake.jpg": "content_type_mismatch",
        "pic.bmp": "unsupported_media_type",
        "meta": "address_forbidden",
        "lan.jpg": "address_forbidden",
    }
    big = next(f for f in payload["failedAttachments"] if f["name"] == "big.jpg")
    assert big["error"]["message"] == "Media file exceeds maximum size of 5MB"
    shown = message(base_url, account, payload["messageId"])
    assert len(shown["failedAttachments"]) == 5


def test_receiver_down_then_up_gets_it_once_with_the_same_webhook_id(
    inbound_app: App, base_url: str, account: TenantAccount
) -> None:
    port = free_port()
    tenant = inbound_app.directory.set_webhook(account.tenant_id, f"http://127.0.0.1:{port}/hooks")
    reply = post_inbound(base_url, new_event(account, attachments=[]))
    message_id = reply.json()["messageId"]

    def failed_once() -> bool:
        hook = message(base_url, account, message_id)["webhook"]
        return bool(hook and hook["attempts"])

    eventually(failed_once)
    with receiving(Receiver(secret=tenant.webhook_secrets[0]), port) as receiver:
        eventually(lambda: webhook_state(base_url, account, message_id) == "delivered")
    assert len(receiver.received) == 1 and receiver.verified
    hook = message(base_url, account, message_id)["webhook"]
    assert receiver.received[0].headers["webhook-id"] == hook["webhookId"]
    assert [a["error"] is not None for a in hook["attempts"]] == [True, False]


def test_always_failing_receiver_is_dead_lettered_then_redelivered_by_the_cli(
    inbound_app: App, base_url: str, account: TenantAccount
) -> None:
    with receiving(Receiver(secret="", default=500)) as receiver:
        subscribe(inbound_app, account, receiver)
        reply = post_inbound(base_url, new_event(account, attachments=[]))
        message_id = reply.json()["messageId"]
        eventually(lambda: webhook_state(base_url, account, message_id) == "dead")
        assert len(receiver.received) == 3  # the first try and two retries
        [letter] = cli(inbound_app, "webhook-deadletters", account.tenant_id)
        assert letter["reason"] == "retries_exhausted" and letter["lastStatus"] == 500
        receiver.default = 200
        redelivered = cli(inbound_app, "webhook-redeliver", letter["deadLetterId"])
        assert redelivered["state"] == "pending"
        eventually(lambda: webhook_state(base_url, account, message_id) == "delivered")
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert ids == {letter["deadLetterId"]} and len(receiver.received) == 4
    assert cli(inbound_app, "webhook-deadletters", account.tenant_id) == []


def cli(app: App, *argv: str) -> Any:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert admin.main(list(argv), app=app) == 0
    return json.loads(out.getvalue())


def test_lost_queue_message_is_recovered_by_the_timer_within_its_bound(
    app: App, base_url: str, account: TenantAccount
) -> None:
    """The host's own `recover_inbound` timer (every 30 s) finds the event: no carrier replay."""
    lost_queue = f"lost-{uuid.uuid4().hex[:10]}"
    with receiving(Receiver(secret="")) as receiver:
        subscribe(app, account, receiver)
        with app_with(app, carrier_webhook_secret=CARRIER_SECRET, inbound_queue=lost_queue):
            # Queued where no trigger listens: to the host, the message is lost.
            reply = post_inbound(base_url, new_event(account, attachments=[]))
            assert reply.status_code == 200, reply.text
        message_id = reply.json()["messageId"]
        with app_with(
            app, carrier_webhook_secret=CARRIER_SECRET, inbound_recover_after_seconds=1
        ) as recovering:
            assert message(base_url, account, message_id)["status"] == "received"
            eventually(lambda: receiver.verified, timeout=45)  # 30 s period + 1 s age + work
            time.sleep(0.5)  # room for a wrong second delivery to show up
            assert message(base_url, account, message_id)["status"] == "processed"
            recovering.storage.queue(lost_queue).delete_queue()
    assert len(receiver.received) == 1
    assert receiver.verified[0].payload["messageId"] == message_id
