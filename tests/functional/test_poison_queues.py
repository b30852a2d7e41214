"""Work the runtime gave up on (poison queues) ends visibly: failed messages, failed inbound
records, dead-lettered webhooks; never a message stuck in `sending` or `received`."""

import json
import uuid

import azure.functions as func

import deliveries_poison
import inbound_poison
import webhooks_poison
from shared.app import App
from shared.clock import now_iso
from shared.inbound.event import encode_event, parse_event
from shared.inbound.records import INBOUND_TABLE
from shared.messages.store import Message
from shared.webhooks import WebhookTarget
from shared.webhooks.deliveries import TABLE as WEBHOOK_DELIVERIES
from tests.conftest import TenantAccount
from tests.context import invocation_context
from tests.webhook_peers import sample_event


def poisoned(body: dict[str, str]) -> func.queue.QueueMessage:
    return func.queue.QueueMessage(
        id=uuid.uuid4().hex, body=json.dumps(body).encode(), dequeue_count=5
    )


def test_a_poisoned_delivery_job_fails_its_message(app: App, account: TenantAccount) -> None:
    message = Message(
        tenant_id=account.tenant_id, message_id=str(uuid.uuid4()), from_number=account.number,
        to="+15559876543", body="hi", media=[], status="sending",
        history=[{"status": "queued", "at": now_iso()}, {"status": "sending", "at": now_iso()}],
        created_at=now_iso(), segments=1, encoding="GSM-7", attempts=1,
    )  # fmt: skip
    store = app.messages
    store.insert_many([message])
    deliveries_poison.main(
        poisoned({"tenantId": account.tenant_id, "messageId": message.message_id}),
        invocation_context(),
    )
    failed = store.get(account.tenant_id, message.message_id)
    assert failed is not None and failed.status == "failed"
    assert failed.failure_reason == "delivery_crashed"


def test_a_poisoned_inbound_event_marks_its_record_failed(app: App, account: TenantAccount) -> None:
    message_id = str(uuid.uuid4())
    event = parse_event(json.dumps(sample_event(to=account.number)).encode())
    app.storage.table(INBOUND_TABLE).create_entity(
        {"PartitionKey": account.tenant_id, "RowKey": message_id, "State": "received",
         "Event": encode_event(event), "ReceivedAt": now_iso()}
    )  # fmt: skip
    inbound_poison.main(
        poisoned({"tenantId": account.tenant_id, "messageId": message_id}), invocation_context()
    )
    row = app.storage.table(INBOUND_TABLE).get_entity(account.tenant_id, message_id)
    assert row["State"] == "failed" and row["FailureReason"] == "processing_crashed"


def test_a_poisoned_webhook_try_is_dead_lettered_and_listed(
    app: App, account: TenantAccount
) -> None:
    delivery = app.webhooks.enqueue(
        WebhookTarget(account.tenant_id, url="https://example.com/hook"),
        "message.status",
        {"messageId": "m"},
    )
    webhooks_poison.main(
        poisoned(
            {
                "tenantId": account.tenant_id,
                "webhookId": delivery.webhook_id,
                "ticket": "t",
                "attempt": "1",
            }
        ),
        invocation_context(),
    )
    row = app.storage.table(WEBHOOK_DELIVERIES).get_entity(account.tenant_id, delivery.webhook_id)
    assert row["State"] == "dead" and row["Reason"] == "worker_crashed"
    listed = app.webhooks.dead_letters.listed(account.tenant_id)
    assert [d for d in listed if d["reason"] == "worker_crashed"]


def test_unreadable_poison_is_dropped_without_error(app: App) -> None:
    for shim in (deliveries_poison, inbound_poison, webhooks_poison):
        shim.main(func.queue.QueueMessage(id="x", body=b"not json"), invocation_context())
