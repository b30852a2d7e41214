"""The operator CLI against Azurite."""

import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.functions.queue import QueueMessage

import deliver_webhook
from shared import admin
from shared.app import App
from shared.messages.store import Message
from shared.settings import Settings
from shared.tables import Table
from shared.webhooks.deliveries import TABLE as WEBHOOK_DELIVERIES
from shared.webhooks.deliveries import WebhookTarget
from tests.conftest import TenantAccount, app_with, unique_number
from tests.context import invocation_context
from tests.webhook_peers import Receiver, receiving


def run(app: App, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = admin.main(list(argv), app=app)
    out = capsys.readouterr().out
    return code, json.loads(out) if code == 0 else None


def test_cli_creates_tenant_user_and_number(
    app: App, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, tenant = run(app, capsys, "tenant-create", "Second Co")
    assert code == 0
    tenant_id = tenant["tenantId"]  # type: ignore[index]
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    code, _ = run(app, capsys, "user-create", "second@example.com", "--password-stdin")
    assert code == 0
    code, user = run(app, capsys, "user-grant", "second@example.com", tenant_id)
    assert user == {"email": "second@example.com", "tenantIds": [tenant_id]}
    number = unique_number()
    code, shown = run(app, capsys, "number-provision", tenant_id, number)
    assert shown["numbers"] == [number]  # type: ignore[index]
    code, again = run(app, capsys, "number-provision", tenant_id, number)
    assert code == 0 and again == shown
    code, secret = run(app, capsys, "webhook-rotate-secret", tenant_id)
    assert len(secret["webhookSecrets"]) == 2  # type: ignore[index]


def test_cli_reports_errors_without_a_trace(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    code = admin.main(["number-provision", "not-a-guid", "+15550000000"], app=app)
    assert code == 1
    assert "error:" in capsys.readouterr().err


def test_demo_seed_is_idempotent_on_the_emulator(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        code, _seeded = run(app, capsys, "seed-demo")
        assert code == 0
    assert app.directory.number_owner(admin.DEMO_NUMBER) == admin.DEMO_TENANT
    user = app.directory.get_user(admin.DEMO_EMAIL)
    assert user is not None and admin.DEMO_TENANT in user.tenant_ids


def test_demo_seed_refuses_real_storage() -> None:
    remote = Settings(
        media_storage_connection_string="DefaultEndpointsProtocol=https;AccountName=prod;"
        "AccountKey=a2V5;BlobEndpoint=https://example.net/;"
    )
    with pytest.raises(SystemExit, match="not the local emulator"):
        admin.main(["seed-demo"], app=App.build(remote))


@pytest.fixture
def hooks_app(app: App) -> Iterator[App]:
    """Webhooks on a private queue, retried 3 s after a failure (no jitter)."""
    with app_with(
        app, webhook_queue=f"t-wh-{uuid.uuid4().hex[:10]}", webhook_retry_schedule_seconds=(3, 3),
        webhook_retry_jitter=0.0,
    ) as changed:  # fmt: skip
        yield changed


def run_visible_tries(app: App) -> int:
    """Hand every try that is due now to the deliver_webhook trigger; how many there were."""
    queue = app.storage.queue(app.settings.webhook_queue)
    handled = 0
    while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=30)):
        for message in batch:
            deliver_webhook.main(
                QueueMessage(id=message.id, body=message.content.encode()), invocation_context()
            )
            queue.delete_message(message)
            handled += 1
    return handled


def test_redeliver_a_pending_webhook_now_then_the_scheduled_retry_sends_nothing(
    hooks_app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiving(Receiver(secret="", statuses=[500])) as receiver:
        tenant = hooks_app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        hook = hooks_app.webhooks.enqueue(WebhookTarget(account.tenant_id), "test.event", {"n": 1})
        assert run_visible_tries(hooks_app) == 1  # answered 500: the retry waits 3 s
        code, shown = run(hooks_app, capsys, "webhook-redeliver", hook.webhook_id)
        assert code == 0 and shown["state"] == "pending"  # type: ignore[index]
        assert run_visible_tries(hooks_app) == 1  # the retry, now
        delivered = hooks_app.webhooks.get(account.tenant_id, hook.webhook_id)
        assert delivered is not None and delivered.state == "delivered"
        time.sleep(3.5)
        assert run_visible_tries(hooks_app) == 1  # the scheduled message turns up: a no-op
    assert [len(receiver.received), len(receiver.verified)] == [2, 2]
    assert {r.headers["webhook-id"] for r in receiver.received} == {hook.webhook_id}
    final = hooks_app.webhooks.get(account.tenant_id, hook.webhook_id)
    assert final is not None and [a["attempt"] for a in final.history] == [1, 2]


def test_redelivered_try_that_fails_again_keeps_one_schedule(
    hooks_app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiving(Receiver(secret="", statuses=[500, 500])) as receiver:
        tenant = hooks_app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        hook = hooks_app.webhooks.enqueue(WebhookTarget(account.tenant_id), "test.event", {"n": 2})
        run_visible_tries(hooks_app)
        code, _ = run(
            hooks_app, capsys, "webhook-redeliver", hook.webhook_id, "--tenant", account.tenant_id
        )
        assert code == 0 and run_visible_tries(hooks_app) == 1  # fails again: try 3 in 3 s
        time.sleep(3.5)
        assert run_visible_tries(hooks_app) == 2  # the old schedule (a no-op) and try 3
    assert len(receiver.received) == 3
    final = hooks_app.webhooks.get(account.tenant_id, hook.webhook_id)
    assert final is not None and final.state == "delivered"
    assert [a["attempt"] for a in final.history] == [1, 2, 3]


def test_redeliver_refuses_a_delivered_webhook(
    hooks_app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiving(Receiver(secret="")) as receiver:
        tenant = hooks_app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        hook = hooks_app.webhooks.enqueue(WebhookTarget(account.tenant_id), "test.event", {"n": 3})
        run_visible_tries(hooks_app)
    assert admin.main(["webhook-redeliver", hook.webhook_id], app=hooks_app) == 1
    assert "not waiting for a retry" in capsys.readouterr().err


def sent_message(account: TenantAccount, status_callback: str) -> Message:
    return Message(
        tenant_id=account.tenant_id, message_id=uuid.uuid4().hex, from_number=account.number,
        to="+15559876543", body="Hello", media=[], status="sent",
        history=[{"status": "sent", "at": "2025-01-01T00:00:00.000Z"}],
        created_at="2025-01-01T00:00:00.000Z", segments=1, encoding="GSM-7",
        status_callback=status_callback,
    )  # fmt: skip


def test_rotating_with_drop_previous_reaches_a_queued_status_callback_retry(
    hooks_app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    old = hooks_app.directory.require_tenant(account.tenant_id).webhook_secrets[0]
    with receiving(Receiver(secret=old, statuses=[500])) as receiver:
        hooks_app.statuses.notify(sent_message(account, receiver.url))
        assert run_visible_tries(hooks_app) == 1  # verified with the old secret, answered 500
        code, rotated = run(
            hooks_app, capsys, "webhook-rotate-secret", account.tenant_id, "--drop-previous"
        )
        assert code == 0 and rotated["webhookSecrets"] != [old]  # type: ignore[index]
        [new] = rotated["webhookSecrets"]  # type: ignore[index]
        receiver.secret = new  # from now on the receiver holds the new secret only
        webhook_id = receiver.received[0].headers["webhook-id"]
        code, _ = run(
            hooks_app, capsys, "webhook-redeliver", webhook_id, "--tenant", account.tenant_id
        )
        assert code == 0 and run_visible_tries(hooks_app) == 1  # the queued retry, now
    first, retry = receiver.received
    assert first.error is None and retry.error is None
    assert len(retry.headers["webhook-signature"].split()) == 1  # no signature by the old secret
    delivered = hooks_app.webhooks.get(account.tenant_id, webhook_id)
    assert delivered is not None and delivered.state == "delivered"
    row = hooks_app.storage.table(WEBHOOK_DELIVERIES).get_entity(account.tenant_id, webhook_id)
    assert not {old, new} & {str(v) for v in row.values()}
    assert "Secrets" not in row


def test_a_secret_copied_into_an_old_delivery_row_is_ignored(
    hooks_app: App, account: TenantAccount
) -> None:
    """Rows written before deliveries stopped copying secrets may hold a `Secrets` field; the
    tenant's current secrets sign the try all the same."""
    dropped = hooks_app.directory.require_tenant(account.tenant_id).webhook_secrets[0]
    with receiving(Receiver(secret="")) as receiver:
        hook = hooks_app.webhooks.enqueue(
            WebhookTarget(account.tenant_id, url=receiver.url), "message.status", {}
        )
        hooks_app.storage.table(WEBHOOK_DELIVERIES).update_entity(
            {"PartitionKey": account.tenant_id, "RowKey": hook.webhook_id,
             "Secrets": json.dumps([dropped])}
        )  # fmt: skip
        tenant = hooks_app.directory.rotate_webhook_secret(account.tenant_id, keep_previous=False)
        receiver.secret = tenant.webhook_secrets[0]
        assert run_visible_tries(hooks_app) == 1
    [received] = receiver.verified
    assert len(received.headers["webhook-signature"].split()) == 1


def dead_letter(app: App, account: TenantAccount) -> str:
    """A webhook whose pinned endpoint answered 410: dead-lettered after one try."""
    secret = app.directory.require_tenant(account.tenant_id).webhook_secrets[0]
    with receiving(Receiver(secret=secret, statuses=[410])) as receiver:
        hook = app.webhooks.enqueue(
            WebhookTarget(account.tenant_id, url=receiver.url), "test.event", {"n": 4}
        )
        assert run_visible_tries(app) == 1
    assert app.webhooks.dead_letters.find(hook.webhook_id, account.tenant_id) is not None
    return hook.webhook_id


def another_writer_first(
    monkeypatch: pytest.MonkeyPatch, app: App, account: TenantAccount, times: int
) -> list[int]:
    """Before each of the next `times` conditional writes to the deliveries table, another
    writer changes the row, so the write loses its race (412)."""
    real_update, raced = Table.update, [0]

    def racing(self: Table[Any], row: Any, **kwargs: Any) -> Any:
        if self.name == WEBHOOK_DELIVERIES and raced[0] < times:
            raced[0] += 1
            app.storage.table(WEBHOOK_DELIVERIES).update_entity(
                {"PartitionKey": account.tenant_id, "RowKey": row.row_key, "Touched": raced[0]}
            )
        return real_update(self, row, **kwargs)

    monkeypatch.setattr(Table, "update", racing)
    return raced


def test_redelivering_a_dead_letter_while_another_writer_changes_its_row_retries(
    hooks_app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    webhook_id = dead_letter(hooks_app, account)
    raced = another_writer_first(monkeypatch, hooks_app, account, times=1)
    code, shown = run(hooks_app, capsys, "webhook-redeliver", webhook_id)
    assert raced == [1] and code == 0
    assert shown["state"] == "pending"  # type: ignore[index]
    assert hooks_app.webhooks.dead_letters.find(webhook_id, account.tenant_id) is None


def test_redelivering_a_dead_letter_whose_row_keeps_changing_is_a_clear_error(
    hooks_app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    webhook_id = dead_letter(hooks_app, account)
    another_writer_first(monkeypatch, hooks_app, account, times=100)
    assert admin.main(["webhook-redeliver", webhook_id], app=hooks_app) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert hooks_app.webhooks.dead_letters.find(webhook_id, account.tenant_id) is not None
