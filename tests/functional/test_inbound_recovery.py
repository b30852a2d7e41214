"""Recovery of inbound events whose queue message was lost (`recover_inbound` timer, on Azurite):
the event reaches the customer's webhook once, without a carrier replay.

The recovery is global (it queues every overdue event of every tenant), so these tests hand
only their own tenant's queue messages to the queue-trigger mains and drop the others.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import azure.functions as func
from azure.functions.queue import QueueMessage

import deliver_webhook
import process_inbound
import recover_inbound
from shared.app import App
from shared.inbound.pending import PENDING_TABLE
from tests.conftest import TenantAccount, app_with
from tests.context import invocation_context
from tests.functional.test_inbound_webhook import body_of, signed
from tests.webhook_peers import Receiver, receiving, sample_event

LATER = timedelta(hours=1)


def recover(app: App, now: datetime) -> int:
    return app.inbound_recovery.run(now)


def take(app: App, queue_name: str, tenant_id: str) -> list[bytes]:
    """This tenant's messages on a queue (removed from it); other tenants' are dropped."""
    queue = app.storage.queue(queue_name)
    mine: list[bytes] = []
    while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=30)):
        for message in batch:
            if json.loads(message.content)["tenantId"] == tenant_id:
                mine.append(message.content.encode())
            queue.delete_message(message)
    return mine


def run(app: App, tenant_id: str, inbound: list[bytes]) -> None:
    """Process `inbound`, then every webhook try they queue for this tenant."""
    for body in inbound:
        process_inbound.main(QueueMessage(id="m", body=body, dequeue_count=1), invocation_context())
    while tries := take(app, app.settings.webhook_queue, tenant_id):
        for body in tries:
            deliver_webhook.main(
                QueueMessage(id="w", body=body, dequeue_count=1), invocation_context()
            )


def accept(app: App, account: TenantAccount) -> str:
    event = sample_event(to=account.number, attachments=[], messageId=f"SM{uuid.uuid4().hex}")
    response = signed(event)
    assert response.status_code == 200, response.get_body()
    return str(body_of(response)["messageId"])


def subscribed(app: App, account: TenantAccount, receiver: Receiver) -> None:
    receiver.secret = app.directory.set_webhook(account.tenant_id, receiver.url).webhook_secrets[0]


def test_lost_queue_message_is_recovered_by_the_timer_and_delivered_once(
    inbound_app: App, account: TenantAccount
) -> None:
    with receiving(Receiver(secret="")) as receiver:
        subscribed(inbound_app, account, receiver)
        message_id = accept(inbound_app, account)
        [lost] = take(inbound_app, inbound_app.settings.inbound_queue, account.tenant_id)
        with app_with(inbound_app, inbound_recover_after_seconds=1) as quick:
            time.sleep(1.1)
            recover_inbound.main(func.timer.TimerRequest(past_due=False), invocation_context())
            recovered = take(quick, quick.settings.inbound_queue, account.tenant_id)
            assert recovered == [lost]
            run(quick, account.tenant_id, recovered)
            recover_inbound.main(func.timer.TimerRequest(past_due=False), invocation_context())
            assert take(quick, quick.settings.inbound_queue, account.tenant_id) == []
    [delivery] = receiver.verified
    assert delivery.payload["messageId"] == message_id


def test_young_events_are_left_to_their_own_queue_message(
    inbound_app: App, account: TenantAccount
) -> None:
    accept(inbound_app, account)
    take(inbound_app, inbound_app.settings.inbound_queue, account.tenant_id)
    recover(inbound_app, now=datetime.now(UTC) + timedelta(seconds=100))  # default: 120 s
    assert take(inbound_app, inbound_app.settings.inbound_queue, account.tenant_id) == []


def test_recovery_and_the_original_message_both_processed_give_one_webhook_id(
    inbound_app: App, account: TenantAccount
) -> None:
    """A slow message, not a lost one: the recovered copy is a duplicate and changes nothing."""
    with receiving(Receiver(secret="")) as receiver:
        subscribed(inbound_app, account, receiver)
        accept(inbound_app, account)
        recover(inbound_app, now=datetime.now(UTC) + LATER)
        recover(inbound_app, now=datetime.now(UTC) + LATER)  # a second run queues nothing more
        messages = take(inbound_app, inbound_app.settings.inbound_queue, account.tenant_id)
        assert len(messages) == 2 and len(set(messages)) == 1
        run(inbound_app, account.tenant_id, messages)
    assert len(receiver.verified) == 1
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1


def test_a_processed_event_leaves_the_pending_index(
    inbound_app: App, account: TenantAccount
) -> None:
    accept(inbound_app, account)
    run(inbound_app, account.tenant_id, take(inbound_app, inbound_app.settings.inbound_queue,
                                             account.tenant_id))  # fmt: skip
    pending = inbound_app.storage.table(PENDING_TABLE).query_entities(
        "TenantId eq @t", parameters={"t": account.tenant_id}
    )
    assert list(pending) == []
    recover(inbound_app, now=datetime.now(UTC) + LATER)
    assert take(inbound_app, inbound_app.settings.inbound_queue, account.tenant_id) == []
