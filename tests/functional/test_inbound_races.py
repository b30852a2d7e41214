"""Two accepts of one carrier event racing through the inbound webhook's `main` (real binding
objects, Azurite), while the first one fails to queue: nothing is lost, and no request gets a
500 or logs a traceback. The interleavings are forced with the intake's own collaborators.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

from shared.app import App, install
from shared.errors import StorageUnavailable
from shared.inbound.intake import Intake
from shared.inbound.pending import PendingIndex
from shared.inbound.queue import ProcessingQueue
from shared.inbound.records import PROCESSED, InboundRecord, InboundRecords
from tests.conftest import TenantAccount
from tests.functional.test_inbound_webhook import body_of, post_event, run_queues, view
from tests.webhook_peers import carrier_headers, sample_event

WAIT = 10.0


class FirstSendFails(ProcessingQueue):
    """The first send runs `meanwhile` (the concurrent accept's part), then fails as a queue
    outage would; later sends are real."""

    def __init__(self, app: App, meanwhile: Callable[[], object]) -> None:
        super().__init__(app.storage, app.settings.inbound_queue)
        self.meanwhile: Callable[[], object] | None = meanwhile

    def send(self, tenant_id: str, message_id: str) -> None:
        if self.meanwhile is None:
            super().send(tenant_id, message_id)
            return
        meanwhile, self.meanwhile = self.meanwhile, None
        meanwhile()
        raise StorageUnavailable()


def with_intake(app: App, records: InboundRecords, queue: ProcessingQueue) -> App:
    intake = Intake(
        records, PendingIndex(app.storage), queue,
        requeue_after_seconds=app.settings.inbound_requeue_after_seconds,
    )  # fmt: skip
    return dataclasses.replace(app, intake=intake)


def signed_event(account: TenantAccount) -> bytes:
    event = sample_event(to=account.number, attachments=[], messageId=f"SM{uuid.uuid4().hex}")
    return json.dumps(event).encode()


def post(body: bytes) -> func.HttpResponse:
    return post_event(body, carrier_headers(body))


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]


def test_a_duplicate_that_finds_the_failed_first_accept_gone_records_the_event_itself(
    inbound_app: App, account: TenantAccount, caplog: pytest.LogCaptureFixture
) -> None:
    """The first accept records the event, fails to queue it and forgets it; the duplicate found
    the record taken, then reads it after it was forgotten (the 404 that was a 500)."""
    body = signed_event(account)
    reading, forgotten = threading.Event(), threading.Event()
    answers: dict[str, func.HttpResponse] = {}
    duplicate = threading.Thread(target=lambda: answers.setdefault("duplicate", post(body)))

    class Records(InboundRecords):
        def get(self, tenant_id: str, message_id: str) -> InboundRecord | None:
            if threading.current_thread() is duplicate and not reading.is_set():
                reading.set()  # its insert found the first accept's record
                assert forgotten.wait(WAIT)
            return super().get(tenant_id, message_id)

        def forget(self, record: InboundRecord) -> bool:
            try:
                return super().forget(record)
            finally:
                forgotten.set()

    def start_duplicate() -> None:
        duplicate.start()
        assert reading.wait(WAIT)

    raced = with_intake(
        inbound_app, Records(inbound_app.storage), FirstSendFails(inbound_app, start_duplicate)
    )
    install(raced)
    try:
        first = post(body)
        duplicate.join(WAIT)
    finally:
        install(inbound_app)
    assert first.status_code == 503, first.get_body()
    second = answers["duplicate"]
    assert second.status_code == 200, second.get_body()
    assert body_of(second)["duplicate"] is False  # it recorded and queued the event
    assert no_tracebacks(caplog) == []
    message_id = body_of(second)["messageId"]
    run_queues(inbound_app)
    assert body_of(view(account, message_id))["status"] == PROCESSED
    retry = post(body)  # the carrier retries the 503
    assert retry.status_code == 200 and body_of(retry)["duplicate"] is True


def test_a_duplicate_answered_while_the_first_accept_fails_is_not_lost(
    inbound_app: App, account: TenantAccount, caplog: pytest.LogCaptureFixture
) -> None:
    """The duplicate reads the record before the failed first accept cleans up: the carrier has
    its 200, so the record must stay, and the pending index brings it to processing."""
    body = signed_event(account)
    answers: dict[str, func.HttpResponse] = {}
    queue = FirstSendFails(inbound_app, lambda: answers.setdefault("duplicate", post(body)))
    install(with_intake(inbound_app, InboundRecords(inbound_app.storage), queue))
    try:
        first = post(body)
    finally:
        install(inbound_app)
    assert first.status_code == 503, first.get_body()
    second = answers["duplicate"]
    assert second.status_code == 200 and body_of(second)["duplicate"] is True
    assert no_tracebacks(caplog) == []
    message_id = body_of(second)["messageId"]
    assert body_of(view(account, message_id))["status"] == "received"
    assert inbound_app.inbound_recovery.run(datetime.now(UTC) + timedelta(hours=1)) >= 1
    run_queues(inbound_app)
    assert body_of(view(account, message_id))["status"] == PROCESSED


def test_processing_finishes_an_event_a_duplicate_accept_touched_meanwhile(
    inbound_app: App, account: TenantAccount
) -> None:
    """A carrier replay arriving while the event is processed changes the record's version;
    processing still records its outcome (and keeps its media) rather than dropping its work."""
    body = signed_event(account)
    first = post(body)
    assert first.status_code == 200
    message_id = body_of(first)["messageId"]
    replayed: list[func.HttpResponse] = []

    class Records(InboundRecords):
        def update(self, record: InboundRecord) -> InboundRecord:
            if not replayed:
                replayed.append(post(body))
            return super().update(record)

    processor = dataclasses.replace(inbound_app.inbound, records=Records(inbound_app.storage))
    install(dataclasses.replace(inbound_app, inbound=processor))
    try:
        assert run_queues(inbound_app) >= 1
    finally:
        install(inbound_app)
    assert body_of(replayed[0])["duplicate"] is True
    shown = body_of(view(account, message_id))
    assert shown["status"] == PROCESSED and shown["webhook"] is not None
