"""Twilio end to end through the local host: a send reaches the fake API in Twilio's form
encoding, its signed StatusCallback delivers it; a signed inbound MMS reaches the customer with
re-hosted media; forged, stale-URL and unsigned requests are refused with nothing stored."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from tests.carrier_fakes import TWILIO_SID, twilio_signature
from tests.carriers.conftest import HANDSET, JPEG, PNG, RECIPIENT, Carriers, new_id
from tests.conftest import TenantAccount, eventually
from tests.webhook_peers import Receiver

pytestmark = pytest.mark.e2e


def post_signed(
    carriers: Carriers, url: str, form: dict[str, str], **sign: str
) -> requests.Response:
    """POST `form` to `url` (on the local host), signed by Twilio for that exact URL."""
    signature = sign.get("signature") or twilio_signature(url, form, sign.get("token", ""))
    headers = {"X-Twilio-Signature": signature} if signature != "-" else {}
    return requests.post(url, data=form, headers=headers, timeout=10)


def test_send_with_three_media_then_signed_status_is_delivered(
    carriers: Carriers, account: TenantAccount
) -> None:
    carriers.use(account, "twilio")
    message_id = carriers.send(account)
    sent = carriers.wait_status(account, message_id, "sent")
    [form] = carriers.twilio.sent
    assert form["To"] == [RECIPIENT] and form["From"] == [account.number]
    assert form["MediaUrl"] == [f"{carriers.media}/p{i}.jpg" for i in range(3)]
    callback = form["StatusCallback"][0]
    assert callback.startswith(f"{carriers.base_url}/api/v1/carriers/twilio/status?")
    sid = sent["carrierMessageId"]
    assert sid.startswith("SM")
    status = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": TWILIO_SID,
              "From": account.number, "To": RECIPIENT}  # fmt: skip
    reply = post_signed(carriers, callback, status)
    assert reply.status_code == 200, reply.text
    view = carriers.wait_status(account, message_id, "delivered")
    assert [h["status"] for h in view["statusHistory"]] == [
        "queued",
        "sending",
        "sent",
        "delivered",
    ]
    # Late and duplicate callbacks change nothing.
    assert post_signed(carriers, callback, {**status, "MessageStatus": "sent"}).status_code == 200
    assert carriers.message(account, message_id)["status"] == "delivered"


def test_provider_4xx_fails_the_message_naming_carrier_and_code(
    carriers: Carriers, account: TenantAccount
) -> None:
    from tests.carrier_fakes import Reply

    carriers.use(account, "twilio")
    carriers.twilio.script = [Reply.json(400, {"code": 21211, "message": "Invalid 'To' Phone Number",
                                               "status": 400})]  # fmt: skip
    message_id = carriers.send(account, media=0)
    view = carriers.wait_status(account, message_id, "failed")
    assert view["failureReason"].startswith("twilio:21211 Invalid 'To' Phone Number")


def test_signed_inbound_mms_reaches_the_customer_with_rehosted_media(
    carriers: Carriers, account: TenantAccount, customer: Receiver
) -> None:
    twilio = carriers.twilio
    direct, redirected = twilio.media_url("a"), twilio.media_url("b")
    twilio.media[urlsplit(direct).path] = (JPEG, "image/jpeg")
    twilio.redirects[urlsplit(redirected).path] = f"{carriers.cdn.url}/cdn/photo.png"
    sid = "MM" + new_id()
    form = {"MessageSid": sid, "AccountSid": TWILIO_SID, "From": HANDSET, "To": account.number,
            "Body": "Here you go", "NumMedia": "2", "MediaUrl0": direct,
            "MediaContentType0": "image/jpeg", "MediaUrl1": redirected,
            "MediaContentType1": "image/png"}  # fmt: skip
    reply = post_signed(carriers, f"{carriers.base_url}/api/v1/carriers/twilio/inbound", form)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/xml")
    assert reply.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    eventually(lambda: customer.verified, timeout=20)
    payload = customer.verified[0].payload
    assert payload["from"] == HANDSET and payload["to"] == account.number
    assert payload["message"] == "Here you go" and payload["failedAttachments"] == []
    urls = [a["url"] for a in payload["attachments"]]
    assert [requests.get(u, timeout=10).content for u in urls] == [JPEG, PNG]
    assert not any(u.startswith((twilio.url, carriers.cdn.url)) for u in urls)
    # Credentials went to Twilio's API host only; the CDN got none.
    assert [s.headers.get("Authorization") for s in carriers.cdn.seen] == [None]
    # A replay is recognised by Twilio's message id: no second customer webhook.
    post_signed(carriers, f"{carriers.base_url}/api/v1/carriers/twilio/inbound", form)
    assert len(customer.received) == 1


@pytest.mark.parametrize("tamper", ["wrong_token", "tampered_form", "unsigned", "other_url"])
def test_forged_inbound_is_401_and_nothing_is_stored(
    carriers: Carriers, account: TenantAccount, tamper: str
) -> None:
    sid = "SM" + new_id()
    url = f"{carriers.base_url}/api/v1/carriers/twilio/inbound"
    form = {"MessageSid": sid, "From": HANDSET, "To": account.number, "Body": "hi",
            "NumMedia": "0"}  # fmt: skip
    sign: dict[str, str] = {}
    if tamper == "wrong_token":
        sign["token"] = "not-the-auth-token-0123456789abcdef"
    elif tamper == "unsigned":
        sign["signature"] = "-"
    elif tamper == "other_url":
        # Signed for another host: PUBLIC_BASE_URL, not the request's Host, is what counts.
        sign["signature"] = twilio_signature(
            "https://attacker.example/api/v1/carriers/twilio/inbound", form
        )
    signature = sign.get("signature") or twilio_signature(url, form, sign.get("token", ""))
    sent = {**form, "Body": "changed"} if tamper == "tampered_form" else form
    headers = {"X-Twilio-Signature": signature} if signature != "-" else {}
    reply = requests.post(url, data=sent, headers=headers, timeout=10)
    assert reply.status_code == 401, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert not carriers.stored_inbound(account, f"twilio:{sid}")


def test_forged_status_callback_is_401_and_changes_nothing(
    carriers: Carriers, account: TenantAccount
) -> None:
    carriers.use(account, "twilio")
    message_id = carriers.send(account, media=0)
    sent = carriers.wait_status(account, message_id, "sent")
    callback = carriers.twilio.sent[-1]["StatusCallback"][0]
    form = {"MessageSid": sent["carrierMessageId"], "MessageStatus": "failed", "ErrorCode": "30003"}
    forged = post_signed(carriers, callback, form, token="not-the-auth-token-0123456789abcdef")
    assert forged.status_code == 401
    # The reference in the URL is signed too: pointing the callback at another message fails.
    other = callback.replace(message_id, "00000000-0000-0000-0000-000000000000")
    moved = requests.post(other, data=form, timeout=10,
                          headers={"X-Twilio-Signature": twilio_signature(callback, form)})  # fmt: skip
    assert moved.status_code == 401
    assert carriers.message(account, message_id)["status"] == "sent"
