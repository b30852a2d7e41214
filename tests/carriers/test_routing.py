"""Routing by the carrier of the sending number: the admin CLI (provisioning refused for a
carrier without its settings, tenant-show listing carriers, moving a number), endpoints of an
unconfigured carrier, the per-message media total, and where provider credentials may go."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from shared import admin
from shared.app import App
from shared.carriers.common import carrier_limits
from shared.errors import ConfigurationError
from shared.settings import load_settings
from tests.carrier_fakes import (
    TWILIO_SID,
    carrier_settings,
)
from tests.carriers.conftest import Carriers
from tests.conftest import TenantAccount, app_with, unique_number
from tests.peers import Resource, media_host


def cli(app: App, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = admin.main(list(argv), app=app)
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else None, captured.err


def test_provisioning_for_an_unconfigured_carrier_is_refused_naming_the_settings(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(app, capsys, "number-provision", account.tenant_id, unique_number(),
                       "--carrier", "twilio")  # fmt: skip
    assert code == 1
    assert "carrier twilio is not configured" in err and "TWILIO_ACCOUNT_SID" in err
    assert "PUBLIC_BASE_URL" in err


def test_provision_show_and_move_numbers_between_carriers(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    values = carrier_settings("https://mms.example.com", twilio="https://api.twilio.com")
    with app_with(app, **values) as changed:
        number = unique_number()
        code, shown, _ = cli(changed, capsys, "number-provision", account.tenant_id, number,
                             "--carrier", "twilio")  # fmt: skip
        assert code == 0
        assert shown["carriers"] == {account.number: "sandbox", number: "twilio"}
        code, _, err = cli(changed, capsys, "number-provision", account.tenant_id, number)
        assert code == 1 and "number-set-carrier" in err
        code, moved, _ = cli(changed, capsys, "number-set-carrier", account.tenant_id, number,
                             "sandbox")  # fmt: skip
        assert code == 0 and moved["carriers"][number] == "sandbox"
        code, _, _ = cli(changed, capsys, "tenant-show", account.tenant_id)
        assert changed.carriers.carrier_of(number) == "sandbox"


def test_default_carrier_setting_is_used_when_none_is_named(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    values = carrier_settings("https://mms.example.com", twilio="https://api.twilio.com")
    with app_with(app, **values, default_carrier="twilio") as changed:
        number = unique_number()
        code, shown, _ = cli(changed, capsys, "number-provision", account.tenant_id, number)
        assert code == 0 and shown["carriers"][number] == "twilio"


@pytest.mark.parametrize("path", [
    "twilio/inbound", "twilio/status", "telnyx/events", "bandwidth/inbound", "bandwidth/status",
])  # fmt: skip
def test_endpoints_of_an_unconfigured_carrier_are_503(base_url: str, path: str) -> None:
    reply = requests.post(f"{base_url}/api/v1/carriers/{path}", data=b"{}", timeout=10)
    assert reply.status_code == 503
    assert reply.json()["code"] == "carrier_not_configured"


def test_plain_http_provider_urls_are_accepted_for_loopback_only() -> None:
    with pytest.raises(ConfigurationError, match="TWILIO_API_BASE_URL"):
        load_settings(media_storage_account_name="a", twilio_api_base_url="http://api.example.com")
    with pytest.raises(ConfigurationError, match="PUBLIC_BASE_URL"):
        load_settings(media_storage_account_name="a", public_base_url="https://h.example/sub")
    ok = load_settings(media_storage_account_name="a", twilio_api_base_url="http://127.0.0.1:9")
    assert ok.twilio_api_base_url == "http://127.0.0.1:9"


@pytest.mark.e2e
def test_a_send_whose_media_cannot_fit_the_carriers_total_is_400(
    carriers: Carriers, account: TenantAccount
) -> None:
    carriers.use(account, "bandwidth")
    big = b"\xff\xd8\xff" + bytes(200 * 1000)
    with media_host({f"/big{i}.jpg": Resource(big) for i in range(3)}) as host:
        body = {"from": account.number, "to": ["+15559876543"], "body": "x",
                "mediaUrls": [f"{host}/big{i}.jpg" for i in range(3)]}  # fmt: skip
        reply = requests.post(f"{carriers.base_url}/api/v1/messages", json=body,
                              auth=account.auth, timeout=30)  # fmt: skip
    assert reply.status_code == 400, reply.text
    problem = reply.json()
    assert problem["code"] == "media_exceeds_carrier_limit"
    assert "bandwidth carries at most 500000 bytes" in problem["detail"]
    assert carriers.bandwidth.sent == []


@pytest.mark.e2e
def test_a_status_for_an_unknown_provider_id_is_acknowledged(carriers: Carriers) -> None:
    from tests.carrier_fakes import twilio_signature

    url = f"{carriers.base_url}/api/v1/carriers/twilio/status"
    form = {"MessageSid": "SMunknown", "MessageStatus": "delivered", "AccountSid": TWILIO_SID}
    reply = requests.post(url, data=form, timeout=10,
                          headers={"X-Twilio-Signature": twilio_signature(url, form)})  # fmt: skip
    assert reply.status_code == 200 and reply.json() == {"status": None, "known": False}


@pytest.mark.e2e
def test_credentials_go_only_to_the_providers_own_origin(carriers: Carriers) -> None:
    routing = carriers.app.carriers
    twilio_url = carriers.twilio.media_url("x")
    assert routing.media_credentials("twilio", twilio_url) is not None
    assert routing.media_credentials("twilio", f"{carriers.cdn.url}/cdn/photo.png") is None
    assert routing.media_credentials("telnyx", twilio_url) is None
    assert routing.media_credentials(None, twilio_url) is None  # a generic webhook's event
    assert routing.media_credentials("bandwidth", twilio_url) is None
    assert routing.media_credentials("bandwidth", carriers.bandwidth.media_url("a.jpg"))


def test_limits_follow_the_carrier(app: App) -> None:
    settings = app.settings
    assert carrier_limits(settings, "telnyx").total_bytes == 1_000_000
    assert carrier_limits(settings, "bandwidth").budget_bytes == 500_000
    assert carrier_limits(settings, "twilio").total_bytes == 5_000_000
    assert carrier_limits(settings, "sandbox").total_bytes is None
