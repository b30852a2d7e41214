"""A webhook try's queue message that finds the try claimed (`sending`) comes back when the claim
turns stale, instead of being dropped and leaving the delivery `sending` for ever."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.functions.queue import QueueMessage

import deliver_webhook
from shared.app import App
from shared.clock import rfc3339, utc_now
from shared.tables import Table
from shared.webhooks.deliveries import TABLE, State, WebhookDelivery, WebhookTarget
from tests.conftest import TenantAccount, app_with
from tests.context import invocation_context
from tests.webhook_peers import Receiver, receiving


@pytest.fixture
def hooks_app(app: App) -> Iterator[App]:
    with app_with(app, webhook_queue=f"t-wh-{uuid.uuid4().hex[:10]}") as changed:
        yield changed


def claimed_by_a_worker_that_died(app: App, row: WebhookDelivery, seconds_ago: float) -> None:
    rows = Table(app.storage.table(TABLE), WebhookDelivery)
    current = rows.get(row.tenant_id, row.webhook_id)
    assert current is not None
    at = rfc3339(utc_now() - timedelta(seconds=seconds_ago))
    rows.update(current.changed(state=State.SENDING, claimed_at=at, attempt=1))


def test_a_try_whose_claim_is_live_is_queued_again_until_the_claim_is_stale(
    hooks_app: App, account: TenantAccount
) -> None:
    secret = hooks_app.directory.require_tenant(account.tenant_id).webhook_secrets[0]
    queue = hooks_app.storage.queue(hooks_app.settings.webhook_queue)
    with receiving(Receiver(secret=secret)) as receiver:
        hook = hooks_app.webhooks.enqueue(
            WebhookTarget(account.tenant_id, url=receiver.url), "test.event", {"n": 1}
        )
        [message] = queue.receive_messages(max_messages=1, visibility_timeout=60)
        claimed_by_a_worker_that_died(hooks_app, hook, seconds_ago=1)
        deliver_webhook.main(
            QueueMessage(id=message.id, body=message.content.encode()), invocation_context()
        )
        queue.delete_message(message)

        # Not dropped: the same try is queued again, invisible until the claim turns stale.
        assert queue.get_queue_properties().approximate_message_count == 1
        assert list(queue.peek_messages()) == []
        assert receiver.received == []

        # When it comes back, the claim is stale: the try is taken over and made.
        claimed_by_a_worker_that_died(
            hooks_app, hook, seconds_ago=hooks_app.webhooks.stale_claim_seconds() + 1
        )
        hooks_app.webhooks.handle(message.content.encode())
    delivered = hooks_app.webhooks.get(account.tenant_id, hook.webhook_id)
    assert delivered is not None and delivered.state == State.DELIVERED
    assert len(receiver.verified) == 1
