"""A delivery worker killed between claiming an attempt and writing its outcome: the queue
redelivers the job, which resolves the message (never left `sending`) while the carrier sees it
at most once (it dedupes by Idempotency-Key; distinct keys accepted are the side effects)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.app import App
from shared.clock import now_iso
from shared.messages.gateway import CarrierReceipt, HttpGateway, OutboundSms
from shared.messages.store import Message, MessageStore
from tests.conftest import FakeClock, TenantAccount, app_with
from tests.peers import FakeCarrier


class Killed(BaseException):
    """The process dying: no `except Exception` runs, no status is written."""


class DiesBeforeHandingOver:
    def send(self, sms: OutboundSms) -> CarrierReceipt:
        raise Killed


class DiesBeforeTheAnswerArrives:
    """The carrier accepted the message; the worker died before it read the answer."""

    def __init__(self, gateway: HttpGateway) -> None:
        self._gateway = gateway

    def send(self, sms: OutboundSms) -> CarrierReceipt:
        self._gateway.send(sms)
        raise Killed


@pytest.fixture
def carrier() -> Iterator[tuple[FakeCarrier, HttpGateway]]:
    fake = FakeCarrier()
    with fake.running() as url:
        yield fake, HttpGateway(url, fake.secret, retries=())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


def queued(app: App, account: TenantAccount) -> tuple[Message, dict[str, Any]]:
    message = Message(
        tenant_id=account.tenant_id, message_id=str(uuid.uuid4()), from_number=account.number,
        to="+15559876543", body="hi", media=[], status="queued",
        history=[{"status": "queued", "at": now_iso()}], created_at=now_iso(), segments=1,
        encoding="GSM-7",
    )  # fmt: skip
    app.messages.insert_many([message])
    job = {"tenantId": message.tenant_id, "messageId": message.message_id, "attempt": 1,
           "enqueuedAt": time.time()}  # fmt: skip
    return message, job


def stored(app: App, message: Message) -> Message:
    found = app.messages.get(message.tenant_id, message.message_id)
    assert found is not None
    return found


def redeliver_after_the_lease(
    app: App, gateway: HttpGateway, clock: FakeClock, job: dict[str, Any]
) -> None:
    clock.now += app.settings.delivery_claim_lease_seconds + 1
    app.message_deliveries.with_gateway(gateway, clock).run(job)


def test_worker_killed_before_handing_over_is_resent_by_the_redelivered_job(
    app: App, account: TenantAccount, carrier: tuple[FakeCarrier, HttpGateway], clock: FakeClock
) -> None:
    fake, gateway = carrier
    message, job = queued(app, account)
    with pytest.raises(Killed):
        app.message_deliveries.with_gateway(DiesBeforeHandingOver(), clock).run(job)
    assert stored(app, message).status == "sending"

    redeliver_after_the_lease(app, gateway, clock, job)

    final = stored(app, message)
    assert final.status == "sent" and final.carrier_message_id == "c-1"
    assert [h["status"] for h in final.history] == ["queued", "sending", "sent"]
    assert list(fake.accepted) == [message.message_id] and len(fake.received) == 1


def test_worker_killed_before_the_gateways_answer_ends_sent_and_the_carrier_sends_once(
    app: App, account: TenantAccount, carrier: tuple[FakeCarrier, HttpGateway], clock: FakeClock
) -> None:
    fake, gateway = carrier
    message, job = queued(app, account)
    with pytest.raises(Killed):
        app.message_deliveries.with_gateway(DiesBeforeTheAnswerArrives(gateway), clock).run(job)
    assert stored(app, message).status == "sending"

    redeliver_after_the_lease(app, gateway, clock, job)

    assert stored(app, message).status == "sent"
    assert len(fake.received) == 2  # handed over twice, under one Idempotency-Key
    assert list(fake.accepted) == [message.message_id]


def test_worker_killed_between_the_answer_and_the_status_write_ends_sent(
    app: App, account: TenantAccount, carrier: tuple[FakeCarrier, HttpGateway], clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fake, gateway = carrier
    message, job = queued(app, account)
    real = MessageStore.transition
    calls: list[str] = []

    def dies_once(self: MessageStore, *args: Any, **kwargs: Any) -> Message | None:
        calls.append(args[2])
        if len(calls) == 1:
            raise Killed
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MessageStore, "transition", dies_once)
    with pytest.raises(Killed):
        app.message_deliveries.with_gateway(gateway, clock).run(job)
    assert list(fake.accepted) == [message.message_id]
    assert stored(app, message).status == "sending"

    redeliver_after_the_lease(app, gateway, clock, job)

    assert stored(app, message).status == "sent"
    assert list(fake.accepted) == [message.message_id]


def test_a_duplicate_job_waits_while_a_live_worker_holds_the_attempt(
    app: App, account: TenantAccount, carrier: tuple[FakeCarrier, HttpGateway], clock: FakeClock
) -> None:
    fake, gateway = carrier
    message, job = queued(app, account)
    lease = app.settings.delivery_claim_lease_seconds
    held = app.messages.claim_attempt(stored(app, message), 1, now=clock.now, lease=lease)
    assert held is not None

    clock.now += lease / 2
    app.message_deliveries.with_gateway(gateway, clock).run(
        job
    )  # the live worker is still at the gateway
    assert fake.received == [] and stored(app, message).status == "sending"

    redeliver_after_the_lease(app, gateway, clock, job)  # ...and then died
    assert stored(app, message).status == "sent" and list(fake.accepted) == [message.message_id]


def test_a_job_for_a_resolved_attempt_does_nothing(
    app: App, account: TenantAccount, carrier: tuple[FakeCarrier, HttpGateway], clock: FakeClock
) -> None:
    fake, gateway = carrier
    message, job = queued(app, account)
    app.message_deliveries.with_gateway(gateway, clock).run(job)
    redeliver_after_the_lease(app, gateway, clock, job)
    assert stored(app, message).status == "sent" and len(fake.received) == 1


def test_the_claim_lease_is_the_delivery_claim_lease_setting(
    app: App, account: TenantAccount, carrier: tuple[FakeCarrier, HttpGateway], clock: FakeClock
) -> None:
    fake, gateway = carrier
    message, job = queued(app, account)
    with app_with(app, delivery_claim_lease_seconds=5) as quick:
        with pytest.raises(Killed):
            quick.message_deliveries.with_gateway(DiesBeforeHandingOver(), clock).run(job)
        assert stored(app, message).claim_expires == clock.now + 5
        clock.now += 6
        quick.message_deliveries.with_gateway(gateway, clock).run(job)
    assert stored(app, message).status == "sent" and list(fake.accepted) == [message.message_id]
