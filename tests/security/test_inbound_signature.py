"""POST /api/v1/webhooks/inbound under attack: tampered, re-signed, stale, future and replayed
events. Nothing is stored unless the answer is 200; a replay is accepted once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from shared.app import App, install
from shared.inbound.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, carrier_signature
from tests.conftest import TenantAccount
from tests.security.conftest import expect, stored
from tests.webhook_peers import CARRIER_SECRET, carrier_headers, sample_event

pytestmark = pytest.mark.e2e


@pytest.fixture
def inbound_app(app: App, base_url: str) -> Iterator[App]:
    settings = app.settings.model_copy(update={"carrier_webhook_secret": SecretStr(CARRIER_SECRET)})
    test_app = App.build(settings)
    install(test_app)
    yield test_app
    install(app)


def event_for(account: TenantAccount) -> dict[str, Any]:
    return sample_event(messageId=f"SM{uuid.uuid4().hex}", to=account.number, attachments=[])


def post(base_url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{base_url}/api/v1/webhooks/inbound", data=body, headers=headers, timeout=10
    )


Tamper = Callable[[bytes], tuple[bytes, dict[str, str]]]
NOW = int(time.time())


def signed_then(change: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]) -> Tamper:
    return lambda body: change(body, carrier_headers(body))


def header(name: str, value: str) -> Tamper:
    return signed_then(lambda b, h: (b, {**h, name: value}))


def one_byte_changed(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"photo", b"phot0", 1), headers


def reserialised(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return json.dumps(json.loads(body), separators=(",", ":")).encode(), headers


def without_signature(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body, {k: v for k, v in headers.items() if k != SIGNATURE_HEADER}


def stamp_swapped(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body, {**headers, TIMESTAMP_HEADER: str(int(headers[TIMESTAMP_HEADER]) + 1)}


def fifth_signature(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    decoys = ",".join(f"v1={'0' * 64}" for _ in range(4))
    return body, {**headers, SIGNATURE_HEADER: f"{decoys},{headers[SIGNATURE_HEADER]}"}


def at(stamp: int) -> Tamper:
    return lambda body: (body, carrier_headers(body, at=stamp))


TAMPERED: list[tuple[str, Tamper, str]] = [
    ("no-signature", signed_then(without_signature), "signature_invalid"),
    ("no-timestamp", signed_then(lambda b, h: (b, {k: v for k, v in h.items() if k != TIMESTAMP_HEADER})), "signature_invalid"),
    ("wrong-secret", lambda b: (b, carrier_headers(b, secret="guessed-secret")), "signature_invalid"),
    ("empty-secret", lambda b: (b, carrier_headers(b, secret="")), "signature_invalid"),
    ("body-byte-changed", signed_then(one_byte_changed), "signature_invalid"),
    ("body-reserialised", signed_then(reserialised), "signature_invalid"),
    ("timestamp-changed", signed_then(stamp_swapped), "signature_invalid"),
    ("stale-timestamp", at(NOW - 301), "signature_expired"),
    ("future-timestamp", at(NOW + 3600), "signature_expired"),
    ("timestamp-not-a-number", header(TIMESTAMP_HEADER, "1e9"), "signature_invalid"),
    ("timestamp-huge", header(TIMESTAMP_HEADER, "9" * 40), "signature_invalid"),
    ("timestamp-negative", header(TIMESTAMP_HEADER, "-5"), "signature_invalid"),
    ("wrong-scheme", signed_then(lambda b, h: (b, {**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER].replace("v1=", "v0=")})), "signature_invalid"),
    ("truncated-signature", signed_then(lambda b, h: (b, {**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER][:-2]})), "signature_invalid"),
    ("valid-one-after-four-decoys", signed_then(fifth_signature), "signature_invalid"),
    ("non-ascii-signature", header(SIGNATURE_HEADER, "v1=\u00e9\u00e9"), "signature_invalid"),
]  # fmt: skip


@pytest.mark.parametrize(("tamper", "code"), [pytest.param(t, c, id=i) for i, t, c in TAMPERED])
def test_tampered_event_is_401_and_stores_nothing(
    inbound_app: App, base_url: str, account: TenantAccount, tamper: Tamper, code: str
) -> None:
    event = event_for(account)
    body, headers = tamper(json.dumps(event).encode())
    before = stored(inbound_app, account.tenant_id)
    expect(post(base_url, body, headers), 401, code)
    assert stored(inbound_app, account.tenant_id) == before
    # Nothing was recorded: the genuine event is still new.
    genuine = json.dumps(event).encode()
    assert expect(post(base_url, genuine, carrier_headers(genuine)), 200)["duplicate"] is False


def test_replay_of_a_captured_event_is_accepted_once(
    inbound_app: App, base_url: str, account: TenantAccount
) -> None:
    body = json.dumps(event_for(account)).encode()
    headers = carrier_headers(body)
    first = expect(post(base_url, body, headers), 200)
    replays = [expect(post(base_url, body, headers), 200) for _ in range(3)]
    assert first["duplicate"] is False and all(r["duplicate"] for r in replays)
    assert {r["messageId"] for r in replays} == {first["messageId"]}
    assert stored(inbound_app, account.tenant_id).inbound == {first["messageId"]}


def test_replay_with_a_fresh_signature_but_changed_content_is_still_a_duplicate(
    inbound_app: App, base_url: str, account: TenantAccount
) -> None:
    # Whoever holds the secret may resend; the carrier's messageId decides, not the content.
    event = event_for(account)
    first = json.dumps(event).encode()
    expect(post(base_url, first, carrier_headers(first)), 200)
    changed = json.dumps({**event, "message": "changed"}).encode()
    assert expect(post(base_url, changed, carrier_headers(changed)), 200)["duplicate"] is True


def test_stale_replay_of_a_once_valid_event_is_401(
    inbound_app: App, base_url: str, account: TenantAccount
) -> None:
    body = json.dumps(event_for(account)).encode()
    captured = NOW - 400
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(captured),
        SIGNATURE_HEADER: carrier_signature(CARRIER_SECRET, captured, body),
    }
    before = stored(inbound_app, account.tenant_id)
    expect(post(base_url, body, headers), 401, "signature_expired")
    assert stored(inbound_app, account.tenant_id) == before


@pytest.mark.parametrize(
    ("build", "status", "code"),
    [
        pytest.param(
            lambda e: (
                json.dumps({**e, "x": 0})[:-1].encode()
                + b', "y": '
                + b"[" * 20_000
                + b"]" * 20_000
                + b"}"
            ),
            400,
            "malformed_json",
            id="deep-nesting",
        ),
        pytest.param(
            lambda e: json.dumps({**e, "pad": "x" * 70_000}).encode(),
            413,
            "event_too_large",
            id="over-64k",
        ),
        pytest.param(
            lambda e: json.dumps(e).replace('"from"', '"from": "+1", "from"', 1).encode(),
            400,
            "duplicate_key",
            id="duplicate-key",
        ),
        pytest.param(
            lambda e: json.dumps({**e, "messageId": "../../x"}).encode(),
            400,
            "validation_failed",
            id="hostile-message-id",
        ),
    ],
)
def test_signed_but_hostile_body_is_refused_and_stores_nothing(
    inbound_app: App, base_url: str, account: TenantAccount,
    build: Callable[[dict[str, Any]], bytes], status: int, code: str,
) -> None:  # fmt: skip
    body = build(event_for(account))
    before = stored(inbound_app, account.tenant_id)
    expect(post(base_url, body, carrier_headers(body)), status, code)
    assert stored(inbound_app, account.tenant_id) == before
