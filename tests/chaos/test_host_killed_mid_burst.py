"""Chaos: a burst of sends (with Idempotency-Key) and signed inbound events against the local host
as its own process, the host killed with SIGKILL at a random moment of the burst, started again
on the same storage, and every request that got no answer (or a 5xx) retried as clients and the
carrier do: the same key, the same carrier message id. Then every accepted send reaches the
carrier gateway exactly once (one Idempotency-Key per message, no second batch) and ends `sent`,
and every accepted inbound event reaches the customer's webhook, always under one `webhook-id`.

The RNG seed is printed (`CHAOS_SEED=<n>` replays a run's choices; the kill's timing against the
host's threads cannot be replayed exactly).

Leases, shortened from Azure's so a run takes under a minute and a half:
- Queue messages a dead host had taken come back after `--queue-lease` (Azure: the Functions host
  takes them for 10 minutes, renewed while the function runs). It stays above the webhook
  deliveries' stale-claim limit (`stale_claim_seconds`, 30 s): a try's message that comes back
  sooner finds the claim live and is queued again until the claim is stale, which would only
  make the run longer. This lease is most of the test's runtime.
- A delivery attempt's claim (`DELIVERY_CLAIM_LEASE_SECONDS`, 120 s in Azure) is 5 s: under the
  queue lease, as 120 s is under 10 minutes, so a redelivered job takes over at once.
- Lost inbound queue messages are found by the recover_inbound timer (every 30 s) once
  `INBOUND_RECOVER_AFTER_SECONDS` (120 s in Azure) have passed; 5 s here.

Its own in-memory Azurite: the session's emulator also feeds the in-process trigger runner of
other tests, which would take this test's delivery jobs and send them through the sandbox.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.app import App
from shared.settings import Settings
from tests import samples
from tests.conftest import TenantAccount, eventually, make_account
from tests.host_process import start_host, wait_healthy
from tests.peers import FakeCarrier
from tests.webhook_peers import (
    CARRIER_SECRET,
    Receiver,
    carrier_headers,
    media_server,
    receiving,
    sample_event,
)
from tools import azurite

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

SENDS = 30
INBOUND_EVENTS = 20
CLIENT_THREADS = 12
# Bounded waits: after the restart, work the dead host held comes back after the queue lease,
# and lost inbound messages after the recovery timer's period plus its age threshold.
SETTLE_SECONDS = 75


@pytest.fixture(scope="module")
def own_azurite() -> Iterator[str]:
    emulator = azurite.start()
    yield emulator.connection_string
    emulator.stop()


@dataclass
class Request:
    """One client request, sent again with the same body (and key) until it gets an answer."""

    kind: str  # "send" or "inbound"
    body: bytes
    headers: dict[str, str]
    recipients: int = 0
    answers: list[int | None] = field(default_factory=list)  # None: no answer at all
    reply: dict[str, Any] | None = None

    @property
    def answered(self) -> bool:
        return bool(self.answers) and self.answers[-1] is not None and self.answers[-1] < 500


def post(base_url: str, request: Request, account: TenantAccount) -> None:
    if request.kind == "send":
        url, auth, headers = f"{base_url}/api/v1/messages", account.auth, request.headers
    else:  # signed afresh on every post, as a carrier re-signs its retries
        url, auth, headers = (
            f"{base_url}/api/v1/webhooks/inbound",
            None,
            carrier_headers(request.body),
        )
    try:
        response = requests.post(url, data=request.body, headers=headers, auth=auth, timeout=15)
    except requests.RequestException:
        request.answers.append(None)
        return
    request.answers.append(response.status_code)
    if response.status_code < 500:
        request.reply = response.json()


def burst(account: TenantAccount, media: str, rng: random.Random) -> list[Request]:
    requests_: list[Request] = []
    for n in range(SENDS):
        to = [f"+1555{rng.randrange(10**6, 10**7)}" for _ in range(rng.randint(1, 3))]
        body = {"from": account.number, "to": to, "body": f"chaos send {n} {uuid.uuid4().hex}"}
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"chaos-{uuid.uuid4()}"}
        requests_.append(Request("send", json.dumps(body).encode(), headers, len(to)))
    for n in range(INBOUND_EVENTS):
        attachments = []
        if n % 3 == 0:
            attachments = [{"name": f"photo{n}.png", "url": f"{media}/photo.png",
                            "contentType": "image/png"}]  # fmt: skip
        event = sample_event(to=account.number, messageId=f"SM{uuid.uuid4().hex}",
                             attachments=attachments)  # fmt: skip
        requests_.append(Request("inbound", json.dumps(event).encode(), {}))
    rng.shuffle(requests_)
    return requests_


def run_all(requests_: list[Request], send: Callable[[Request], None]) -> None:
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(send, requests_))


def test_host_killed_mid_burst_loses_nothing_and_sends_nothing_twice(
    own_azurite: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    print(f"CHAOS_SEED={seed}")
    rng = random.Random(seed)
    started = time.monotonic()

    app = App.build(Settings(media_storage_connection_string=own_azurite))
    account = make_account(app)
    app.directory.set_number_carrier(account.tenant_id, account.number, "generic")
    carrier = FakeCarrier(delay=0.1)
    with (
        carrier.running() as gateway_url,
        media_server({"/photo.png": (samples.image("PNG"), "image/png")}) as media,
        receiving(Receiver(secret="", delay=0.1)) as receiver,
    ):
        tenant = app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        port, log = azurite.free_port(), tmp_path / "host.log"
        queue_lease = app.webhooks.stale_claim_seconds() + 5
        settings = {
            "OUTBOUND_ALLOW_LOOPBACK": "true",
            "CARRIER_GATEWAY_URL": gateway_url,
            "CARRIER_GATEWAY_SECRET": carrier.secret,
            "CARRIER_WEBHOOK_SECRET": CARRIER_SECRET,
            "DELIVERY_CLAIM_LEASE_SECONDS": "5",
            "INBOUND_RECOVER_AFTER_SECONDS": "5",
        }

        def host() -> subprocess.Popen[bytes]:
            process = start_host(
                port, own_azurite, queue_lease=queue_lease, settings=settings, log=log
            )
            wait_healthy(port, process)
            return process

        base_url = f"http://127.0.0.1:{port}"
        requests_ = burst(account, media, rng)
        kill_after = rng.randint(len(requests_) // 5, len(requests_) // 2)
        kill_delay = rng.uniform(0, 0.2)
        done = threading.Semaphore(0)

        def send(request: Request) -> None:
            post(base_url, request, account)
            done.release()

        first = host()
        try:
            killer = threading.Thread(target=kill, args=(first, done, kill_after, kill_delay))
            killer.start()
            run_all(requests_, send)
            killer.join()
            assert first.wait(timeout=10) == -signal.SIGKILL
            unanswered = [r for r in requests_ if not r.answered]
            print(f"killed {kill_delay:.2f} s after {kill_after} requests were done, at "
                  f"{time.monotonic() - started:.1f} s; {len(unanswered)} of {len(requests_)} "
                  "unanswered")  # fmt: skip
            assert unanswered, "the kill came after the burst"

            second = host()
            try:
                retry_until_answered(unanswered, lambda r: post(base_url, r, account))
                refused = [a for r in requests_ for a in r.answers if a and 300 <= a < 500]
                assert not refused, f"4xx answers {refused}; see {log}"
                print(f"restarted and retried by {time.monotonic() - started:.1f} s")
                settle(app, account, carrier, receiver, requests_, log)
                print(f"settled at {time.monotonic() - started:.1f} s")
                replayed = [Request(r.kind, r.body, r.headers) for r in requests_]
                run_all(replayed, lambda r: post(base_url, r, account))
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(timeout=20)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()

    sends = [r for r in requests_ if r.kind == "send"]
    message_ids = [m["messageId"] for r in sends for m in reply(r)["messages"]]
    # Exactly once: the gateway saw one Idempotency-Key per message and none of a second batch,
    # and each send's text went to as many recipients as it named.
    assert sorted(carrier.accepted) == sorted(message_ids)
    texts = Counter(p["body"] for p in carrier.accepted.values())
    for request in sends:
        assert texts[json.loads(request.body)["body"]] == request.recipients
    assert carrier.bad_signatures == 0
    store = app.messages
    for message_id in message_ids:
        found = store.get(account.tenant_id, message_id)
        assert found is not None and found.status in ("sent", "delivered"), message_id
    # A retry, however late, answers with the batch its key first produced.
    for request, again in zip(requests_, replayed, strict=True):
        assert again.answers == [202 if request.kind == "send" else 200]
        assert again.reply is not None and request.reply is not None
        if request.kind == "send":
            assert again.reply["messages"] == request.reply["messages"]
        else:
            assert again.reply == {"messageId": request.reply["messageId"], "duplicate": True}
    # At least once, under one webhook-id each.
    inbound_ids = {reply(r)["messageId"] for r in requests_ if r.kind == "inbound"}
    webhook_ids = delivered_webhooks(receiver)
    assert inbound_ids <= set(webhook_ids)
    assert all(len(ids) == 1 for ids in webhook_ids.values()), webhook_ids

    resent = sum(n - 1 for n in Counter(p["messageId"] for p in carrier.received).values())
    repeated = len(receiver.verified) - len(webhook_ids)
    print(f"{len(message_ids)} messages sent once ({resent} handed over again after a takeover), "
          f"{len(inbound_ids)} inbound events delivered ({repeated} repeats); "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip


def kill(
    process: subprocess.Popen[bytes], done: threading.Semaphore, after: int, delay: float
) -> None:
    """SIGKILL `delay` seconds after `after` requests were done, with others in flight."""
    for _ in range(after):
        done.acquire()
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)


def retry_until_answered(pending: list[Request], send: Callable[[Request], None]) -> None:
    deadline = time.monotonic() + 30
    while pending:
        assert time.monotonic() < deadline, [r.answers for r in pending]
        run_all(pending, send)
        pending = [r for r in pending if not r.answered]
        time.sleep(0.5 if pending else 0)


def reply(request: Request) -> dict[str, Any]:
    assert request.reply is not None
    return request.reply


def delivered_webhooks(receiver: Receiver) -> dict[str, set[str]]:
    """The webhook-ids each inbound message id reached the receiver under."""
    ids: dict[str, set[str]] = defaultdict(set)
    for received in list(receiver.verified):
        ids[received.payload["messageId"]].add(received.headers["webhook-id"])
    return ids


def settle(
    app: App, account: TenantAccount, carrier: FakeCarrier, receiver: Receiver,
    requests_: list[Request], log: Path,
) -> None:  # fmt: skip
    """Wait until every accepted send is final and every accepted event reached the receiver."""
    store = app.messages
    sends = [m["messageId"] for r in requests_ if r.kind == "send" for m in reply(r)["messages"]]
    events = {reply(r)["messageId"] for r in requests_ if r.kind == "inbound"}

    def done() -> bool:
        if not events <= set(delivered_webhooks(receiver)):
            return False
        if not set(sends) <= set(carrier.accepted):
            return False
        final = ("sent", "delivered", "failed")
        return all(
            (m := store.get(account.tenant_id, i)) is not None and m.status in final for i in sends
        )

    try:
        eventually(done, timeout=SETTLE_SECONDS, interval=0.5)
    except AssertionError:
        statuses = Counter(getattr(store.get(account.tenant_id, i), "status", None) for i in sends)
        missing = events - set(delivered_webhooks(receiver))
        unsent = set(sends) - set(carrier.accepted)
        raise AssertionError(
            f"not settled: message statuses {dict(statuses)}, {len(unsent)} never at the "
            f"gateway, inbound events never delivered: {sorted(missing)}; see {log}"
        ) from None
