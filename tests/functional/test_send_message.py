"""POST /api/v1/messages through `send_message.main`: validation, media checks, acceptance."""

import json
import threading
import uuid
from typing import Any

import pytest

import send_message
from shared.app import App
from shared.messages.request import parse_send
from shared.messages.service import acceptance_body
from shared.messages.store import MessageStore
from tests import samples
from tests.conftest import TenantAccount, http_request
from tests.context import invocation_context
from tests.peers import Resource, media_host


def send(
    account: TenantAccount, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    request = http_request(
        "POST", "/api/v1/messages", body=json.dumps(body),
        headers={"Authorization": account.authorization, **(headers or {})},
    )  # fmt: skip
    return send_message.main(request, invocation_context())


def message_body(account: TenantAccount, **fields: Any) -> dict[str, Any]:
    return {
        "from": account.number,
        "to": ["+15559876543"],
        "body": "Check out our new product!",
        **fields,
    }


def own_media(app: App, account: TenantAccount, name: str = "image1.jpg") -> str:
    record = app.media.put(
        tenant_id=account.tenant_id, phone_number=account.number, file_name=name,
        original_file_name=name, content_type="image/jpeg", data=samples.image("JPEG"),
        optimization_state="not_needed",
    )  # fmt: skip
    return record.uri


def json_of(response: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response.get_body())
    return parsed


def test_sms_is_accepted_with_segments_and_a_location(app: App, account: TenantAccount) -> None:
    response = send(account, message_body(account))
    assert response.status_code == 202, response.get_body()
    body = json_of(response)
    [message] = body["messages"]
    assert message["status"] == "queued" and message["to"] == "+15559876543"
    assert (
        response.headers["Location"]
        == message["location"]
        == f"/api/v1/messages/{message['messageId']}"
    )
    assert body["type"] == "sms" and body["sms"] == {
        "encoding": "GSM-7",
        "segments": 1,
        "characters": 26,
    }
    stored = app.messages.get(account.tenant_id, message["messageId"])
    assert stored is not None and stored.body == "Check out our new product!"


def test_mms_with_own_media_reports_size_estimate(app: App, account: TenantAccount) -> None:
    urls = [own_media(app, account, f"image{i}.jpg") for i in range(3)]
    response = send(account, message_body(account, mediaUrls=urls))
    body = json_of(response)
    assert response.status_code == 202
    assert body["type"] == "mms" and body["mms"]["mediaCount"] == 3
    assert body["mms"]["estimatedBytes"] > 3 * len(samples.image("JPEG"))


def test_one_message_per_unique_recipient(app: App, account: TenantAccount) -> None:
    recipients = [f"+1555700{i:04d}" for i in range(50)]
    body = json_of(send(account, message_body(account, to=recipients + recipients[:5])))
    assert [m["to"] for m in body["messages"]] == recipients
    assert len({m["messageId"] for m in body["messages"]}) == 50


def test_from_number_of_another_tenant_is_403(
    account: TenantAccount, other_account: TenantAccount
) -> None:
    response = send(account, message_body(other_account))
    assert response.status_code == 403
    assert json_of(response)["code"] == "number_not_provisioned"


def test_eleven_media_urls_is_400_naming_the_limit(app: App, account: TenantAccount) -> None:
    response = send(
        account, message_body(account, mediaUrls=[f"https://e.com/{i}.jpg" for i in range(11)])
    )
    assert response.status_code == 400
    assert "at most 10 media" in json_of(response)["detail"]


def test_another_tenants_media_is_refused(
    app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    response = send(account, message_body(account, mediaUrls=[own_media(app, other_account)]))
    assert response.status_code == 422
    assert json_of(response)["errors"][0]["reason"] == "media_not_found"


def test_external_media_is_checked_and_every_failure_named(
    app: App, account: TenantAccount
) -> None:
    resources = {
        "/ok.jpg": Resource(samples.image("JPEG")),
        "/page.html": Resource(b"<html></html>", "text/html"),
        "/huge.mp4": Resource(b"\x00" * (5 * 1024 * 1024 + 1), "video/mp4"),
        "/to-metadata": Resource(b"", None, status=302, location="https://169.254.169.254/latest"),
    }
    with media_host(resources) as host:
        urls = [f"{host}/ok.jpg", f"{host}/page.html", f"{host}/missing.jpg", f"{host}/huge.mp4",
                f"{host}/to-metadata"]  # fmt: skip
        response = send(account, message_body(account, mediaUrls=urls))
        assert response.status_code == 422
        errors = {e["field"]: e for e in json_of(response)["errors"]}
        assert set(errors) == {"mediaUrls[1]", "mediaUrls[2]", "mediaUrls[3]", "mediaUrls[4]"}
        assert errors["mediaUrls[1]"]["reason"] == "unsupported_content_type"
        assert errors["mediaUrls[2]"]["reason"] == "http_status"
        assert errors["mediaUrls[3]"]["reason"] == "too_large"
        assert errors["mediaUrls[4]"]["reason"] == "address_forbidden"
        assert errors["mediaUrls[2]"]["url"] == f"{host}/missing.jpg"
        ok = send(account, message_body(account, mediaUrls=[f"{host}/ok.jpg"]))
        assert ok.status_code == 202


@pytest.mark.parametrize(
    ("url", "status", "reason"),
    [
        ("https://10.0.0.1/a.jpg", 422, "address_forbidden"),
        ("https://169.254.169.254/latest/meta-data", 422, "address_forbidden"),
        ("https://[::ffff:10.0.0.1]/a.jpg", 422, "address_forbidden"),
        ("https://100.64.0.1/a.jpg", 422, "address_forbidden"),
        ("https://224.0.0.1/a.jpg", 422, "address_forbidden"),
        ("https://2130706433/a.jpg", 422, "address_forbidden"),
        ("http://example.com/a.jpg", 400, "scheme_not_allowed"),
        ("https://user:pass@example.com/a.jpg", 400, "credentials_in_url"),
        ("https://example.com/" + "a" * 2100, 400, "url_too_long"),
        ("ftp://example.com/a.jpg", 400, "scheme_not_allowed"),
    ],
)
def test_forbidden_media_urls(
    app: App, account: TenantAccount, url: str, status: int, reason: str
) -> None:
    response = send(account, message_body(account, mediaUrls=[url]))
    assert response.status_code == status
    assert json_of(response)["errors"][0]["reason"] == reason


def test_idempotent_retry_returns_the_same_messages(app: App, account: TenantAccount) -> None:
    body = message_body(account, to=["+15550001111", "+15550002222"])
    first = send(account, body, {"Idempotency-Key": "send-1"})
    second = send(account, body, {"Idempotency-Key": "send-1"})
    assert first.status_code == second.status_code == 202
    assert second.get_body() == first.get_body()
    rows = list(
        app.storage.table("messages").query_entities(
            "PartitionKey eq @t", parameters={"t": account.tenant_id}
        )
    )
    assert len(rows) == 2
    changed = send(account, {**body, "body": "different"}, {"Idempotency-Key": "send-1"})
    assert changed.status_code == 422


def test_two_runs_of_one_send_racing_store_one_batch_and_answer_alike(
    app: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = parse_send(
        json.dumps(message_body(account, to=["+15550003333", "+15550004444"])).encode(),
        max_recipients=app.settings.max_recipients,
        max_body=app.settings.max_body_characters,
    )
    seed = uuid.uuid4().hex
    first = app.outbox.accept(account.tenant_id, request, seed)
    # The second run looked before the first stored its batch, and meets it at the insert.
    real_get, this_run = MessageStore.get, threading.get_ident()
    looked = []

    def first_look_misses(self: MessageStore, tenant_id: str, message_id: str) -> Any:
        if threading.get_ident() != this_run:  # a queue worker of the local host, if running
            return real_get(self, tenant_id, message_id)
        looked.append(message_id)
        return None if len(looked) == 1 else real_get(self, tenant_id, message_id)

    monkeypatch.setattr(MessageStore, "get", first_look_misses)
    second = app.outbox.accept(account.tenant_id, request, seed)
    assert len(looked) == 2  # the race was run: missed, then found after the insert failed
    assert acceptance_body(second, request.body) == acceptance_body(first, request.body)
    rows = list(
        app.storage.table("messages").query_entities(
            "PartitionKey eq @t", parameters={"t": account.tenant_id}
        )
    )
    assert sorted(r["RowKey"] for r in rows) == sorted(m.message_id for m in first.messages)
