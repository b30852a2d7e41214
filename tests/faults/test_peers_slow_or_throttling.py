"""The carrier gateway and a customer webhook receiver that are slow (time out) or answer 429:
retried, and delivered exactly once when they recover (once per Idempotency-Key at the carrier,
once per webhook-id at the receiver).

Already covered elsewhere, not repeated here: gateway 5xx then success, 4xx final and down for
good (tests/e2e/test_send_and_deliver.py); receiver down then up, always 500 until dead-lettered
and redelivered (tests/e2e/test_inbound_mms.py); the optimiser killed mid-run
(tests/functional/test_optimize_media.py::test_run_killed_*)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from shared.app import App, install
from shared.messages.gateway import HttpGateway
from shared.outbound import AddressPolicy, OutboundClient
from tests.conftest import TenantAccount, app_with, eventually
from tests.peers import serve
from tests.webhook_peers import CARRIER_SECRET, post_inbound, sample_event

pytestmark = pytest.mark.e2e
GATEWAY_SECRET = "gateway-secret-for-the-fault-tests-0123456789"


@dataclass
class Peer:
    """Answers POSTs from `script` ("slow" sleeps past the caller's timeout, or a status), then
    200; remembers each request's dedup key in arrival order."""

    script: list[str | int]
    key_header: str
    slow_seconds: float = 1.5
    keys: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def running(self) -> Iterator[str]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with peer.lock:
                    step = peer.script.pop(0) if peer.script else 200
                    peer.keys.append(self.headers.get(peer.key_header, ""))
                if step == "slow":
                    time.sleep(peer.slow_seconds)
                    step = 200
                reply = json.dumps({"carrierMessageId": "c-slow", "status": "sent"}).encode()
                try:
                    self.send_response(int(step))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the caller gave up on us

            def log_message(self, *args: Any) -> None:
                pass

        with serve(Handler) as url:
            yield url


def send_one(base_url: str, account: TenantAccount) -> str:
    body = {"from": account.number, "to": ["+15559876543"], "body": "retry me"}
    response = requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=account.auth, timeout=30
    )
    assert response.status_code == 202, response.text
    message_id: str = response.json()["messages"][0]["messageId"]
    return message_id


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(["slow", "slow", "slow", "slow", "slow"], id="slow-past-the-timeout"),
        pytest.param([429, 429, 429, 429, 429], id="429-throttled"),
    ],
)
def test_gateway_slow_or_429_is_retried_and_delivered_once(
    base_url: str, app: App, account: TenantAccount, script: list[str | int]
) -> None:
    # Five refusals outlast the gateway's four in-process tries, so the queue retries too.
    peer = Peer(list(script), key_header="Idempotency-Key")
    with (
        peer.running() as url,
        app_with(app, carrier_gateway_url=url, carrier_gateway_secret=GATEWAY_SECRET) as changed,
    ):
        gateway = HttpGateway(url, GATEWAY_SECRET, timeout=0.5, retries=(0.1, 0.1, 0.1))
        changed.message_deliveries = changed.message_deliveries.with_gateway(gateway)
        message_id = send_one(base_url, account)

        def status() -> str | None:
            message = app.messages.get(account.tenant_id, message_id)
            return message.status if message and message.status in ("sent", "failed") else None

        assert eventually(status, timeout=20) == "sent"
    message = app.messages.get(account.tenant_id, message_id)
    assert message is not None and message.attempts == 2
    assert set(peer.keys) == {message_id} and len(peer.keys) == 6  # one key: the carrier dedups


@pytest.fixture
def inbound_app(app: App, base_url: str) -> Iterator[App]:
    settings = app.settings.model_copy(
        update={
            "carrier_webhook_secret": SecretStr(CARRIER_SECRET),
            "webhook_retry_schedule_seconds": (1, 1),
            "webhook_retry_jitter": 0.0,
        }
    )
    # A 1 s outbound deadline (production: 15 s) so a slow receiver times out quickly.
    quick = OutboundClient(AddressPolicy.local_development(), total_timeout=1)
    test_app = App.build(settings, outbound=quick)
    install(test_app)
    yield test_app
    install(app)


@pytest.mark.parametrize(
    "script", [pytest.param(["slow"], id="slow-past-the-timeout"), pytest.param([429], id="429")]
)
def test_webhook_receiver_slow_or_429_is_retried_under_one_webhook_id(
    inbound_app: App, base_url: str, account: TenantAccount, script: list[str | int]
) -> None:
    peer = Peer(list(script), key_header="webhook-id", slow_seconds=2.0)
    with peer.running() as url:
        inbound_app.directory.set_webhook(account.tenant_id, f"{url}/hooks")
        event = sample_event(messageId=f"SM{uuid.uuid4().hex}", to=account.number, attachments=[])
        reply = post_inbound(base_url, event)
        assert reply.status_code == 200, reply.text
        message_id = reply.json()["messageId"]

        def hook() -> dict[str, Any] | None:
            shown = requests.get(
                f"{base_url}/api/v1/messages/{message_id}", auth=account.auth, timeout=10
            ).json()["webhook"]
            return shown if shown and shown["state"] == "delivered" else None

        delivered = eventually(hook, timeout=20)
    assert len(delivered["attempts"]) == 2
    assert (
        delivered["attempts"][0]["error"] is not None or delivered["attempts"][0]["status"] == 429
    )
    # A slow receiver may still have handled the first try: the shared webhook-id lets it dedup.
    assert set(peer.keys) == {delivered["webhookId"]} and len(peer.keys) == 2
