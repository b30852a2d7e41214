"""The inbound MMS functions (`inbound_webhook`, `process_inbound`, `deliver_webhook`,
`get_message`) called through their `main` with real binding objects, on Azurite.

Queues are private to each test (settings name them), so the host's trigger runner, if running,
never takes these messages; the tests hand them to the queue-trigger mains themselves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import uuid
from dataclasses import replace
from typing import Any

import azure.functions as func
import pytest
import requests
from azure.functions.queue import QueueMessage
from standardwebhooks.webhooks import Webhook

import carrier_status
import deliver_webhook
import get_message
import inbound_webhook
import process_inbound
from shared import admin
from shared.app import App, install
from shared.errors import ServiceError
from shared.inbound.records import INBOUND_TABLE
from shared.media.ingest import Ingest
from shared.media.store import MediaStore
from shared.webhooks.deliveries import TABLE as WEBHOOK_DELIVERIES
from tests import samples
from tests.conftest import TenantAccount, app_with, http_request
from tests.context import invocation_context
from tests.webhook_peers import (
    Receiver,
    carrier_headers,
    media_server,
    receiving,
    sample_event,
)


def post_event(body: bytes, headers: dict[str, str]) -> func.HttpResponse:
    request = http_request("POST", "/api/v1/webhooks/inbound", body=body, headers=headers)
    return inbound_webhook.main(request, invocation_context())


def signed(event: dict[str, Any]) -> func.HttpResponse:
    body = json.dumps(event).encode()
    return post_event(body, carrier_headers(body))


def run_queues(app: App) -> int:
    """Hand every queued message to its trigger's main until both queues are empty."""
    handled = 0
    for _ in range(50):
        progressed = False
        for name, main in (
            (app.settings.inbound_queue, process_inbound.main),
            (app.settings.webhook_queue, deliver_webhook.main),
        ):
            queue = app.storage.queue(name)
            for message in queue.receive_messages(max_messages=16, visibility_timeout=30):
                main(
                    QueueMessage(id=message.id, body=message.content.encode(), dequeue_count=1),
                    invocation_context(),
                )
                queue.delete_message(message)
                handled += 1
                progressed = True
        if not progressed:
            return handled
    raise AssertionError("queues did not drain")


def view(account: TenantAccount, message_id: str) -> func.HttpResponse:
    request = http_request(
        "GET", f"/api/v1/messages/{message_id}", route_params={"messageId": message_id},
        headers={"Authorization": account.authorization},
    )  # fmt: skip
    return get_message.main(request, invocation_context())


def body_of(response: func.HttpResponse) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response.get_body())
    return parsed


def rows(app: App, table: str, tenant_id: str) -> list[Any]:
    return list(
        app.storage.table(table).query_entities("PartitionKey eq @t", parameters={"t": tenant_id})
    )


def test_signed_mms_is_rehosted_and_delivered_signed(
    inbound_app: App, account: TenantAccount
) -> None:
    jpeg, vcard = samples.image("JPEG"), samples.VCARD
    files = {"/a/photo.jpg": (jpeg, "image/jpeg"), "/a/card.vcf": (vcard, "text/vcard")}
    with media_server(files) as media, receiving(Receiver(secret="")) as receiver:
        tenant = inbound_app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        event = sample_event(
            to=account.number,
            messageId=f"SM{uuid.uuid4().hex}",
            attachments=[
                {"name": "photo.jpg", "url": f"{media}/a/photo.jpg", "contentType": "image/jpeg",
                 "size": len(jpeg)},
                {"name": "card.vcf", "url": f"{media}/a/card.vcf", "contentType": "text/vcard"},
            ],
        )  # fmt: skip
        response = signed(event)
        assert response.status_code == 200, response.get_body()
        message_id = body_of(response)["messageId"]
        assert body_of(view(account, message_id))["status"] == "received"
        assert run_queues(inbound_app) == 2
    [delivery] = receiver.verified
    payload = delivery.payload
    assert payload["messageId"] == message_id
    assert payload["from"] == event["from"] and payload["to"] == account.number
    assert payload["message"] == event["message"] and payload["failedAttachments"] == []
    assert [a["name"] for a in payload["attachments"]] == ["photo.jpg", "card.vcf"]
    for attachment, data in zip(payload["attachments"], (jpeg, vcard), strict=True):
        assert attachment["size"] == len(data)
        assert requests.get(attachment["url"], timeout=10).content == data
    shown = body_of(view(account, message_id))
    assert shown["direction"] == "inbound" and shown["status"] == "processed"
    assert shown["webhook"]["webhookId"] == delivery.headers["webhook-id"]
    assert shown["webhook"]["state"] == "delivered"
    assert [a["status"] for a in shown["webhook"]["attempts"]] == [200]


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("wrong_secret", "signature_invalid"),
        ("stale", "signature_expired"),
        ("reserialised", "signature_invalid"),
        ("unsigned", "signature_invalid"),
    ],
)
def test_bad_signatures_are_401_and_store_nothing(
    inbound_app: App, account: TenantAccount, tamper: str, code: str
) -> None:
    body = json.dumps(sample_event(to=account.number), indent=2).encode()
    headers = carrier_headers(body)
    if tamper == "wrong_secret":
        headers = carrier_headers(body, secret="not-the-secret")
    elif tamper == "stale":
        headers = carrier_headers(body, at=int(headers["X-Carrier-Timestamp"]) - 301)
    elif tamper == "reserialised":
        body = json.dumps(json.loads(body)).encode()
    else:
        headers = {"Content-Type": "application/json"}
    response = post_event(body, headers)
    assert response.status_code == 401
    assert body_of(response)["code"] == code
    assert rows(inbound_app, INBOUND_TABLE, account.tenant_id) == []


def test_unprovisioned_number_is_404_and_stores_nothing(inbound_app: App) -> None:
    response = signed(sample_event(to="+15550000001", messageId=f"SM{uuid.uuid4().hex}"))
    assert response.status_code == 404
    assert body_of(response)["code"] == "number_not_provisioned"
    assert run_queues(inbound_app) == 0


def test_endpoint_without_a_secret_refuses_with_503(app: App, account: TenantAccount) -> None:
    assert app.settings.carrier_webhook_secret is None
    response = signed(sample_event(to=account.number))
    assert response.status_code == 503
    assert body_of(response)["code"] == "inbound_not_configured"


def test_invalid_event_names_the_field(inbound_app: App, account: TenantAccount) -> None:
    response = signed(sample_event(to=account.number, messageId="bad id/with slash"))
    assert response.status_code == 400
    assert body_of(response)["errors"][0]["field"] == "messageId"


def test_replayed_message_id_is_accepted_and_processed_once(
    inbound_app: App, account: TenantAccount
) -> None:
    with receiving(Receiver(secret="")) as receiver:
        tenant = inbound_app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        event = sample_event(to=account.number, attachments=[], messageId=f"SM{uuid.uuid4().hex}")
        first, second = signed(event), signed(event)
        assert first.status_code == second.status_code == 200
        assert body_of(first)["duplicate"] is False and body_of(second)["duplicate"] is True
        assert body_of(first)["messageId"] == body_of(second)["messageId"]
        assert run_queues(inbound_app) == 2  # one processing, one delivery
        signed(event)
        assert run_queues(inbound_app) == 0
    assert len(receiver.verified) == 1


def test_processing_twice_delivers_once(inbound_app: App, account: TenantAccount) -> None:
    with receiving(Receiver(secret="")) as receiver:
        tenant = inbound_app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        response = signed(
            sample_event(
                to=account.number, attachments=[], messageId="SM-twice-" + uuid.uuid4().hex
            )
        )
        message_id = body_of(response)["messageId"]
        again = json.dumps({"tenantId": account.tenant_id, "messageId": message_id}).encode()
        process_inbound.main(
            QueueMessage(id="dup", body=again, dequeue_count=1), invocation_context()
        )
        run_queues(inbound_app)
    assert len(receiver.verified) == 1
    assert len(rows(inbound_app, WEBHOOK_DELIVERIES, account.tenant_id)) == 1


def test_gone_endpoint_is_disabled_and_dead_lettered(
    inbound_app: App, account: TenantAccount
) -> None:
    with receiving(Receiver(secret="", default=410)) as receiver:
        tenant = inbound_app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        signed(sample_event(to=account.number, attachments=[], messageId=f"SM{uuid.uuid4().hex}"))
        run_queues(inbound_app)
    assert len(receiver.received) == 1  # not retried
    assert inbound_app.directory.require_tenant(account.tenant_id).webhook_disabled
    [letter] = admin_json(inbound_app, "webhook-deadletters", account.tenant_id)
    assert letter["reason"] == "endpoint_gone" and letter["lastStatus"] == 410


def test_rotated_secrets_both_verify(inbound_app: App, account: TenantAccount) -> None:
    old = inbound_app.directory.require_tenant(account.tenant_id).webhook_secrets[0]
    with receiving(Receiver(secret=old)) as receiver:
        inbound_app.directory.set_webhook(account.tenant_id, receiver.url)
        new = inbound_app.directory.rotate_webhook_secret(account.tenant_id).webhook_secrets[0]
        signed(sample_event(to=account.number, attachments=[], messageId=f"SM{uuid.uuid4().hex}"))
        run_queues(inbound_app)
    [delivery] = receiver.verified
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(delivery.body, delivery.headers)


def test_other_tenants_cannot_see_the_message(
    inbound_app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    response = signed(
        sample_event(to=account.number, attachments=[], messageId=f"SM{uuid.uuid4().hex}")
    )
    message_id = body_of(response)["messageId"]
    assert view(account, message_id).status_code == 200
    assert view(other_account, message_id).status_code == 404
    assert view(account, "not-a-message-id").status_code == 404
    run_queues(inbound_app)
    shown = body_of(view(account, message_id))
    assert shown["webhook"]["state"] == "skipped" and shown["webhook"]["reason"] == "no_endpoint"


def admin_json(app: App, *argv: str) -> Any:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert admin.main(list(argv), app=app) == 0
    return json.loads(out.getvalue())


UNRESOLVED_SECRET = "@Microsoft.KeyVault(SecretUri=https://kv-token.vault.azure.net/secrets/carrier-webhook-secret/)"


def test_unresolved_key_vault_secret_keeps_carrier_endpoints_off_and_stores_nothing(
    app: App, account: TenantAccount
) -> None:
    tag = uuid.uuid4().hex[:10]
    with app_with(
        app, carrier_webhook_secret=UNRESOLVED_SECRET, inbound_queue=f"t-in-{tag}",
        webhook_queue=f"t-wh-{tag}",
    ) as changed:  # fmt: skip
        assert changed.settings.refused_secrets.keys() == {"CARRIER_WEBHOOK_SECRET"}
        # Signed with the literal reference text, as a forger who knows the vault's name would.
        body = json.dumps(sample_event(to=account.number)).encode()
        response = post_event(body, carrier_headers(body, secret=UNRESOLVED_SECRET))
        assert response.status_code == 503
        assert body_of(response)["code"] == "inbound_not_configured"
        report = json.dumps({"messageId": "m1", "from": account.number, "status": "sent"}).encode()
        request = http_request(
            "POST", "/api/v1/webhooks/carrier-status", body=report,
            headers=carrier_headers(report, secret=UNRESOLVED_SECRET),
        )  # fmt: skip
        status = carrier_status.main(request, invocation_context())
        assert status.status_code == 503
        assert body_of(status)["code"] == "carrier_not_configured"
        assert rows(changed, INBOUND_TABLE, account.tenant_id) == []
        assert run_queues(changed) == 0


def test_attachment_that_cannot_be_signed_is_retried_not_reported_failed(
    inbound_app: App, account: TenantAccount
) -> None:
    """A missing signing key is the service's fault, not the sender's: processing raises so the
    queue retries (and the poison queue ends it visibly), and the record stays `received`."""
    jpeg = samples.image("JPEG")
    with media_server({"/p.jpg": (jpeg, "image/jpeg")}) as media:
        event = sample_event(
            to=account.number, messageId=f"SM{uuid.uuid4().hex}",
            attachments=[{"name": "p.jpg", "url": f"{media}/p.jpg", "contentType": "image/jpeg"}],
        )  # fmt: skip
        response = signed(event)
        assert response.status_code == 200, response.get_body()
        message_id = body_of(response)["messageId"]
        keyless_media = MediaStore(
            replace(inbound_app.storage, account_key=None), inbound_app.settings
        )
        keyless_ingest = Ingest(keyless_media, inbound_app.settings)
        keyless = dataclasses.replace(
            inbound_app, media=keyless_media, ingest=keyless_ingest,
            inbound=dataclasses.replace(inbound_app.inbound, media=keyless_media,
                                        ingest=keyless_ingest),
        )  # fmt: skip
        queue = inbound_app.storage.queue(inbound_app.settings.inbound_queue)
        [message] = queue.receive_messages(max_messages=1, visibility_timeout=30)
        install(keyless)
        try:
            with pytest.raises(ServiceError) as raised:
                process_inbound.main(
                    QueueMessage(id=message.id, body=message.content.encode(), dequeue_count=1),
                    invocation_context(),
                )
        finally:
            install(inbound_app)
        assert raised.value.code == "media_not_configured"
    assert body_of(view(account, message_id))["status"] == "received"
