"""The status machine: forward only, etag-guarded, duplicate jobs harmless."""

import uuid

from shared.app import App
from shared.clock import now_iso
from shared.messages.store import Message
from tests.conftest import TenantAccount


def queued(app: App, account: TenantAccount) -> Message:
    message = Message(
        tenant_id=account.tenant_id, message_id=str(uuid.uuid4()), from_number=account.number,
        to="+15559876543", body="hi", media=[], status="queued",
        history=[{"status": "queued", "at": now_iso()}], created_at=now_iso(), segments=1,
        encoding="GSM-7",
    )  # fmt: skip
    store = app.messages
    store.insert_many([message])
    fetched = store.get(account.tenant_id, message.message_id)
    assert fetched is not None
    return fetched


def test_status_never_moves_backwards(app: App, account: TenantAccount) -> None:
    store = app.messages
    message = queued(app, account)
    assert store.transition(account.tenant_id, message.message_id, "delivered") is not None
    for late in ("sent", "sending", "queued", "failed", "delivered"):
        assert store.transition(account.tenant_id, message.message_id, late) is None
    final = store.get(account.tenant_id, message.message_id)
    assert final is not None and final.status == "delivered"
    assert [h["status"] for h in final.history] == ["queued", "delivered"]


def test_a_failed_message_stays_failed_with_its_reason(app: App, account: TenantAccount) -> None:
    store = app.messages
    message = queued(app, account)
    store.transition(account.tenant_id, message.message_id, "failed", reason="carrier_rejected_400")
    assert store.transition(account.tenant_id, message.message_id, "delivered") is None
    final = store.get(account.tenant_id, message.message_id)
    assert final is not None and final.failure_reason == "carrier_rejected_400"


NOW, LEASE = 10_000.0, 120.0


def test_only_one_worker_claims_an_attempt(app: App, account: TenantAccount) -> None:
    store = app.messages
    message = queued(app, account)
    first = store.claim_attempt(message, 1, now=NOW, lease=LEASE)
    assert first is not None and first.status == "sending" and first.attempts == 1
    assert first.claim_expires == NOW + LEASE
    # stale etag: a concurrent duplicate
    assert store.claim_attempt(message, 1, now=NOW, lease=LEASE) is None
    # fresh copy: the attempt is held
    assert store.claim_attempt(first, 1, now=NOW + LEASE - 1, lease=LEASE) is None
    second = store.claim_attempt(first, 2, now=NOW, lease=LEASE)
    assert second is not None and second.status == "sending" and second.attempts == 2
    assert store.claim_attempt(second, 1, now=NOW + 10 * LEASE, lease=LEASE) is None  # overtaken


def test_an_attempt_left_unresolved_past_its_lease_is_taken_over_once(
    app: App, account: TenantAccount
) -> None:
    store = app.messages
    claimed = store.claim_attempt(queued(app, account), 1, now=NOW, lease=LEASE)
    assert claimed is not None
    later = NOW + LEASE + 1
    taken = store.claim_attempt(claimed, 1, now=later, lease=LEASE)
    assert taken is not None and taken.attempts == 1 and taken.claim_expires == later + LEASE
    assert [h["status"] for h in taken.history] == ["queued", "sending"]
    assert store.claim_attempt(claimed, 1, now=later, lease=LEASE) is None  # lost the race


def test_a_sent_message_is_not_sent_again(app: App, account: TenantAccount) -> None:
    store = app.messages
    message = queued(app, account)
    claimed = store.claim_attempt(message, 1, now=NOW, lease=LEASE)
    assert claimed is not None
    sent = store.transition(account.tenant_id, message.message_id, "sent")
    assert sent is not None
    assert store.claim_attempt(sent, 1, now=NOW + 10 * LEASE, lease=LEASE) is None
    assert store.claim_attempt(sent, 2, now=NOW, lease=LEASE) is None
