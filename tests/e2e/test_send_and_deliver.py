"""Sending over real HTTP through the local host, delivered by its queue trigger."""

from typing import Any

import pytest
import requests

from shared.app import App
from tests import samples
from tests.conftest import TenantAccount, app_with, eventually
from tests.peers import FakeCarrier


def upload(base_url: str, account: TenantAccount, name: str) -> str:
    body = account.upload_json(samples.image("JPEG"), fileName=name)
    response = requests.post(f"{base_url}/api/v1/media", json=body, auth=account.auth, timeout=30)
    assert response.status_code == 201, response.text
    uri: str = response.json()["uri"]
    return uri


def send(base_url: str, account: TenantAccount, **fields: Any) -> dict[str, Any]:
    body = {
        "from": account.number,
        "to": ["+15559876543"],
        "body": "Check out our new product!",
        **fields,
    }
    response = requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=account.auth, timeout=30
    )
    assert response.status_code == 202, response.text
    parsed: dict[str, Any] = response.json()
    return parsed


def status_of(app: App, account: TenantAccount, message_id: str) -> str:
    message = app.messages.get(account.tenant_id, message_id)
    assert message is not None
    return message.status


def wait_status(
    app: App, account: TenantAccount, message_id: str, status: str, timeout: float = 15
) -> None:
    eventually(lambda: status_of(app, account, message_id) == status, timeout=timeout)


def test_guide_single_image_send_is_delivered(
    base_url: str, app: App, account: TenantAccount
) -> None:
    url = upload(base_url, account, "product-image.jpg")
    accepted = send(base_url, account, mediaUrls=[url])
    message_id = accepted["messages"][0]["messageId"]
    wait_status(app, account, message_id, "delivered")
    message = app.messages.get(account.tenant_id, message_id)
    assert message is not None
    assert [h["status"] for h in message.history] == ["queued", "sending", "sent", "delivered"]
    assert message.media[0]["url"] == url


def test_guide_gallery_of_three_is_delivered(
    base_url: str, app: App, account: TenantAccount
) -> None:
    urls = [upload(base_url, account, f"image{i}.jpg") for i in (1, 2, 3)]
    accepted = send(base_url, account, body="Product gallery - 3 photos attached", mediaUrls=urls)
    assert accepted["mms"]["mediaCount"] == 3
    wait_status(app, account, accepted["messages"][0]["messageId"], "delivered")


def test_fan_out_to_fifty_recipients_is_fully_delivered(
    base_url: str, app: App, account: TenantAccount
) -> None:
    recipients = [f"+1555800{i:04d}" for i in range(50)]
    accepted = send(base_url, account, to=recipients)
    ids = [m["messageId"] for m in accepted["messages"]]
    eventually(lambda: all(status_of(app, account, i) == "delivered" for i in ids), timeout=30)


def test_sandbox_failure_marks_the_message_failed(
    base_url: str, app: App, account: TenantAccount
) -> None:
    with app_with(app, sandbox_fail_numbers=("+15550009999",)) as changed:
        accepted = send(base_url, account, to=["+15550009999"])
        message_id = accepted["messages"][0]["messageId"]
        wait_status(changed, account, message_id, "failed")
        message = app.messages.get(account.tenant_id, message_id)
        assert message is not None and message.failure_reason == "sandbox_rejected"


@pytest.fixture
def carrier(app: App, account: TenantAccount) -> FakeCarrier:
    """The generic HTTP gateway, and the account's number moved to it."""
    app.directory.set_number_carrier(account.tenant_id, account.number, "generic")
    return FakeCarrier()


def test_gateway_5xx_then_success_delivers_once(
    base_url: str, app: App, account: TenantAccount, carrier: FakeCarrier
) -> None:
    # Five 500s outlast the gateway's in-process retries (4 tries), so the queue retries too.
    carrier.script = [500, 500, 500, 500, 503]
    with (
        carrier.running() as url,
        app_with(app, carrier_gateway_url=url, carrier_gateway_secret=carrier.secret),
    ):
        accepted = send(base_url, account)
        message_id = accepted["messages"][0]["messageId"]
        wait_status(app, account, message_id, "sent", timeout=20)
    assert carrier.bad_signatures == 0
    assert len(carrier.received) == 6
    assert list(carrier.accepted) == [message_id]
    message = app.messages.get(account.tenant_id, message_id)
    assert message is not None and message.attempts == 2 and message.carrier_message_id == "c-1"


def test_gateway_4xx_is_final(
    base_url: str, app: App, account: TenantAccount, carrier: FakeCarrier
) -> None:
    carrier.script = [400]
    with (
        carrier.running() as url,
        app_with(app, carrier_gateway_url=url, carrier_gateway_secret=carrier.secret),
    ):
        message_id = send(base_url, account)["messages"][0]["messageId"]
        wait_status(app, account, message_id, "failed")
    assert len(carrier.received) == 1
    message = app.messages.get(account.tenant_id, message_id)
    assert message is not None and message.failure_reason == "unknown_number"


def test_gateway_down_for_good_fails_after_the_schedule(
    base_url: str, app: App, account: TenantAccount, carrier: FakeCarrier
) -> None:
    carrier.script = [500] * 100
    with carrier.running() as url, app_with(
        app, carrier_gateway_url=url, carrier_gateway_secret=carrier.secret,
        delivery_retry_seconds=(1,),
    ):  # fmt: skip
        message_id = send(base_url, account)["messages"][0]["messageId"]
        wait_status(app, account, message_id, "failed", timeout=30)
    message = app.messages.get(account.tenant_id, message_id)
    assert message is not None and message.failure_reason == "carrier_unavailable"
    assert carrier.accepted == {}


def test_media_pending_optimisation_is_held_until_ready(
    base_url: str, app: App, account: TenantAccount
) -> None:
    # A container the optimiser does not watch, so only this test decides when media is ready.
    with app_with(app, media_container="holdtest") as changed:
        record = changed.media.put(
            tenant_id=account.tenant_id, phone_number=account.number, file_name="big.jpg",
            original_file_name="big.jpg", content_type="image/jpeg", data=samples.image("JPEG"),
            optimization_state="pending",
        )  # fmt: skip
        message_id = send(base_url, account, mediaUrls=[record.uri])["messages"][0]["messageId"]
        import time

        time.sleep(3)
        assert status_of(app, account, message_id) == "queued"
        changed.media.update(record, optimization_state="optimized")
        wait_status(app, account, message_id, "delivered")
