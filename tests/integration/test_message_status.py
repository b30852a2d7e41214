"""The status machine: forward only, etag-guarded, duplicate jobs harmless."""

import uuid

from shared.app import App
from shared.messages.store import Message, MessageStore, now_iso
from tests.conftest import TenantAccount


def queued(app: App, account: TenantAccount) -> Message:
    message = Message(
        tenant_id=account.tenant_id, message_id=str(uuid.uuid4()), from_number=account.number,
        to="+15559876543", body="hi", media=[], status="queued",
        history=[{"status": "queued", "at": now_iso()}], created_at=now_iso(), segments=1,
        encoding="GSM-7",
    )  # fmt: skip
    store = MessageStore(app.storage)
    store.insert_many([message])
    fetched = store.get(account.tenant_id, message.message_id)
    assert fetched is not None
    return fetched


def test_status_never_moves_backwards(app: App, account: TenantAccount) -> None:
    store = MessageStore(app.storage)
    message = queued(app, account)
    assert store.transition(account.tenant_id, message.message_id, "delivered") is not None
    for late in ("sent", "sending", "queued", "failed", "delivered"):
        assert store.transition(account.tenant_id, message.message_id, late) is None
    final = store.get(account.tenant_id, message.message_id)
    assert final is not None and final.status == "delivered"
    assert [h["status"] for h in final.history] == ["queued", "delivered"]


def test_a_failed_message_stays_failed_with_its_reason(app: App, account: TenantAccount) -> None:
    store = MessageStore(app.storage)
    message = queued(app, account)
    store.transition(account.tenant_id, message.message_id, "failed", reason="carrier_rejected_400")
    assert store.transition(account.tenant_id, message.message_id, "delivered") is None
    final = store.get(account.tenant_id, message.message_id)
    assert final is not None and final.failure_reason == "carrier_rejected_400"


def test_only_one_worker_claims_an_attempt(app: App, account: TenantAccount) -> None:
    store = MessageStore(app.storage)
    message = queued(app, account)
    first = store.claim_attempt(message, 1)
    assert first is not None and first.status == "sending" and first.attempts == 1
    assert store.claim_attempt(message, 1) is None  # stale etag: a concurrent duplicate
    assert store.claim_attempt(first, 1) is None  # fresh copy: the attempt is already taken
    second = store.claim_attempt(first, 2)
    assert second is not None and second.status == "sending" and second.attempts == 2


def test_a_sent_message_is_not_sent_again(app: App, account: TenantAccount) -> None:
    store = MessageStore(app.storage)
    message = queued(app, account)
    claimed = store.claim_attempt(message, 1)
    assert claimed is not None
    sent = store.transition(account.tenant_id, message.message_id, "sent")
    assert sent is not None and store.claim_attempt(sent, 2) is None
