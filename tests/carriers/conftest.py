"""Fixtures for the carrier tests: the provider fakes, a CDN on another origin, three small
images on a media host, and the local host's app pointed at the fakes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from shared.app import App
from shared.inbound.records import message_id_for
from tests import samples
from tests.carrier_fakes import (
    BandwidthFake,
    Cdn,
    TelnyxFake,
    TelnyxSigner,
    TwilioFake,
    carrier_settings,
)
from tests.conftest import TenantAccount, app_with, eventually
from tests.peers import Resource, media_host
from tests.webhook_peers import Receiver, receiving

PNG = samples.image("PNG")
JPEG = samples.image("JPEG")
RECIPIENT = "+15559876543"
HANDSET = "+15557770000"


@dataclass
class Carriers:
    """Everything one carrier test needs, running."""

    app: App
    base_url: str
    twilio: TwilioFake
    telnyx: TelnyxFake
    telnyx_signer: TelnyxSigner
    bandwidth: BandwidthFake
    cdn: Cdn
    media: str  # a media host serving /p0.jpg, /p1.jpg, /p2.jpg

    def use(self, account: TenantAccount, carrier: str) -> None:
        self.app.directory.set_number_carrier(account.tenant_id, account.number, carrier)

    def send(self, account: TenantAccount, media: int = 3, **fields: Any) -> str:
        body = {"from": account.number, "to": [RECIPIENT], "body": "Hello from the shop",
                "mediaUrls": [f"{self.media}/p{i}.jpg" for i in range(media)], **fields}  # fmt: skip
        response = requests.post(f"{self.base_url}/api/v1/messages", json=body,
                                 auth=account.auth, timeout=30)  # fmt: skip
        assert response.status_code == 202, response.text
        return str(response.json()["messages"][0]["messageId"])

    def message(self, account: TenantAccount, message_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.base_url}/api/v1/messages/{message_id}",
                                auth=account.auth, timeout=10)  # fmt: skip
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_status(self, account: TenantAccount, message_id: str, status: str) -> dict[str, Any]:
        return eventually(  # type: ignore[no-any-return]
            lambda: (m := self.message(account, message_id))["status"] == status and m, timeout=20
        )

    def stored_inbound(self, account: TenantAccount, provider_message_id: str) -> bool:
        record = self.app.inbound_records.get(
            account.tenant_id, message_id_for(provider_message_id)
        )
        return record is not None


@pytest.fixture
def carriers(app: App, base_url: str) -> Iterator[Carriers]:
    twilio, telnyx, bandwidth = TwilioFake(), TelnyxFake(), BandwidthFake()
    cdn = Cdn({"/cdn/photo.png": (PNG, "image/png")})
    signer = TelnyxSigner()
    resources = {f"/p{i}.jpg": Resource(JPEG) for i in range(3)}
    with (
        twilio.running(), telnyx.running(), bandwidth.running(), cdn.running(),
        media_host(resources) as media,
    ):  # fmt: skip
        values = carrier_settings(
            base_url, twilio=twilio.url, telnyx=telnyx.url, telnyx_public_key=signer.public_key,
            bandwidth=bandwidth.url,
        )  # fmt: skip
        with app_with(app, **values, webhook_retry_schedule_seconds=(1,),
                      webhook_retry_jitter=0.0) as changed:  # fmt: skip
            yield Carriers(changed, base_url, twilio, telnyx, signer, bandwidth, cdn, media)


@pytest.fixture
def customer(carriers: Carriers, account: TenantAccount) -> Iterator[Receiver]:
    """The account's webhook receiver, verifying every delivery with the tenant's secret."""
    with receiving(Receiver(secret="")) as receiver:
        tenant = carriers.app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        yield receiver


def new_id() -> str:
    return uuid.uuid4().hex


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
