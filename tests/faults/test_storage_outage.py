"""Azure Storage (Azurite) stopping in the middle of an upload, a send and an inbound event.

"In the middle" is simulated precisely: a wrapper around one storage call stops Azurite at that
point, so the next storage call of the same request is the first to fail. The client must get a
clean 503 problem with Retry-After well inside Azure's 230 s limit; once storage is back a retry
succeeds, with no orphan blob, no record pointing at nothing and no duplicate message."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.app import App
from shared.inbound.queue import ProcessingQueue
from shared.inbound.records import PROCESSED
from shared.media.store import MEDIA_TABLE
from shared.media.sweep import sweep_orphan_blobs
from shared.messages.store import MessageStore
from tests import samples
from tests.conftest import TenantAccount, eventually
from tests.faults.conftest import Storage, timed
from tests.security.conftest import expect, stored, upload_body
from tests.webhook_peers import post_inbound, sample_event
from tools.localhost import LocalHost, TriggerRunner

pytestmark = pytest.mark.e2e

JPEG = samples.image("JPEG")
# Retries: blobs/queues 2 x 0.5 s, tables 0.3 s exponential, so a few seconds at most.
OUTAGE_ANSWER_SECONDS = 10


def assert_storage_503(response: requests.Response) -> None:
    problem = expect(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "devstoreaccount1" not in json.dumps(problem)


def upload(base_url: str, account: TenantAccount, **headers: str) -> requests.Response:
    return requests.post(
        f"{base_url}/api/v1/media", json=upload_body(account, JPEG), auth=account.auth,
        headers=headers, timeout=60,
    )  # fmt: skip


def test_request_against_stopped_storage_answers_503_within_seconds(
    fault_app: App, fault_account: TenantAccount, base_url: str, storage: Storage
) -> None:
    fault_app.auth.authenticate(fault_account.authorization)  # cached: auth needs no storage
    storage.stop()
    response, seconds = timed(lambda: upload(base_url, fault_account))
    assert_storage_503(response)
    assert seconds < OUTAGE_ANSWER_SECONDS
    health, seconds = timed(lambda: requests.get(f"{base_url}/api/health", timeout=60))
    assert health.status_code == 503 and seconds < OUTAGE_ANSWER_SECONDS


def test_upload_when_storage_stops_after_the_blob_write_is_503_then_a_retry_succeeds(
    fault_app: App, fault_account: TenantAccount, base_url: str, storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    real_table = fault_app.storage.table

    class StopsBeforeRecord:
        def __init__(self, table: Any) -> None:
            self._table = table

        def create_entity(self, entity: Any) -> Any:
            storage.stop()  # the blob is written; the record write is the first to fail
            return self._table.create_entity(entity)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._table, name)

    def table(name: str) -> Any:
        found = real_table(name)
        return StopsBeforeRecord(found) if name == MEDIA_TABLE else found

    monkeypatch.setattr(fault_app.storage, "table", table)
    response, seconds = timed(lambda: upload(base_url, fault_account))
    assert_storage_503(response)
    assert seconds < OUTAGE_ANSWER_SECONDS
    monkeypatch.setattr(fault_app.storage, "table", real_table)

    storage.start()
    created = expect(upload(base_url, fault_account), 201)
    # The first attempt's blob, whose record and clean-up both failed, is left tagged for the
    # storage sweep, which removes it once the grace period is over.
    assert len(stored(fault_app, fault_account.tenant_id).blobs) == 2
    assert sweep_orphan_blobs(fault_app.media, now=datetime.now(UTC) + timedelta(hours=1)) >= 1
    after = stored(fault_app, fault_account.tenant_id)
    # Exactly the retry's record and blob.
    assert after.media == {created["mediaId"]}
    assert after.blobs == {f"{created['mediaId']}/{created['fileName']}"}
    assert requests.get(created["uri"], timeout=10).content == JPEG


def send(base_url: str, account: TenantAccount, key: str) -> requests.Response:
    body = {"from": account.number, "to": ["+15559876543", "+15559876544"], "body": "hi"}
    return requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=account.auth,
        headers={"Idempotency-Key": key}, timeout=60,
    )  # fmt: skip


def test_send_when_storage_stops_before_the_records_is_503_then_the_same_key_succeeds_once(
    fault_app: App, fault_account: TenantAccount, base_url: str, storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    real_insert = MessageStore.insert_many

    def stop_first(self: MessageStore, messages: Any) -> None:
        storage.stop()  # validated and the idempotency key claimed; nothing else written
        real_insert(self, messages)

    monkeypatch.setattr(MessageStore, "insert_many", stop_first)
    key = uuid.uuid4().hex
    assert_storage_503(send(base_url, fault_account, key))
    monkeypatch.setattr(MessageStore, "insert_many", real_insert)
    storage.start()

    # The failed request's claim is resumed at once: its retry finishes the same batch.
    accepted = expect(send(base_url, fault_account, key), 202)
    replayed = expect(send(base_url, fault_account, key), 202)
    assert replayed == accepted
    ids = {m["messageId"] for m in accepted["messages"]}
    assert stored(fault_app, fault_account.tenant_id).messages == ids  # no duplicates, no ghosts


def test_send_when_storage_stops_before_the_records_leaves_no_ghost_messages(
    fault_app: App, fault_account: TenantAccount, base_url: str, storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    real_insert = MessageStore.insert_many

    def stop_first(self: MessageStore, messages: Any) -> None:
        storage.stop()  # the delivery jobs are queued; the records are the first write to fail
        real_insert(self, messages)

    monkeypatch.setattr(MessageStore, "insert_many", stop_first)
    assert_storage_503(send(base_url, fault_account, uuid.uuid4().hex))
    monkeypatch.setattr(MessageStore, "insert_many", real_insert)
    storage.start()
    accepted = expect(send(base_url, fault_account, uuid.uuid4().hex), 202)
    ids = {m["messageId"] for m in accepted["messages"]}
    assert stored(fault_app, fault_account.tenant_id).messages == ids


def test_inbound_event_when_storage_stops_before_queueing_is_503_then_processed_once(
    fault_app: App, fault_account: TenantAccount, base_url: str, storage: Storage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    real_queue = ProcessingQueue.send

    def stop_first(queue: ProcessingQueue, tenant_id: str, message_id: str) -> None:
        storage.stop()  # the event is recorded; queueing (and undoing the record) fail
        real_queue(queue, tenant_id, message_id)

    event = sample_event(messageId=f"SM{uuid.uuid4().hex}", to=fault_account.number, attachments=[])

    def deliver() -> requests.Response:
        return post_inbound(base_url, event, timeout=60)

    monkeypatch.setattr(ProcessingQueue, "send", stop_first)
    response, seconds = timed(deliver)
    assert_storage_503(response)
    assert seconds < OUTAGE_ANSWER_SECONDS
    monkeypatch.setattr(ProcessingQueue, "send", real_queue)
    storage.start()

    triggers = TriggerRunner(LocalHost(), fault_app.storage, poll_seconds=0.1)
    triggers.start()
    try:
        # The carrier retries the 503. The record survived (storage was down), so the retry is a
        # duplicate; it is queued again because it is older than INBOUND_REQUEUE_AFTER_SECONDS
        # (1 s here, 300 s by default: see the report).
        retry = eventually(lambda: expect(deliver(), 200), timeout=10)
        message_id = retry["messageId"]

        def processed() -> bool:
            record = fault_app.inbound_records.get(fault_account.tenant_id, message_id)
            return record is not None and record.state == PROCESSED

        eventually(processed, timeout=20)
    finally:
        triggers.stop()
    assert stored(fault_app, fault_account.tenant_id).inbound == {message_id}
    assert expect(deliver(), 200)["duplicate"] is True
