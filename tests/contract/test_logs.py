"""Logs: every record of an invocation carries its correlation id, and no secret reaches a log
line, whoever writes it (our code, the Azure SDK at DEBUG, urllib3, httpx)."""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import uuid
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from shared.app import App
from shared.logs import JsonFormatter, correlation_id, redact
from tests.conftest import PASSWORD, TenantAccount, eventually
from tests.contract.conftest import Contract, upload, upload_body
from tests.webhook_peers import (
    CARRIER_SECRET,
    Receiver,
    media_server,
    post_inbound,
    receiving,
    sample_event,
)
from tools.azurite import DEV_KEY
from tools.functions_worker import Invocation, worker
from tools.localhost import Function, LocalHost

LOUD_LOGGERS = ("azure", "azure.core.pipeline.policies.http_logging_policy", "urllib3", "httpx",
                "httpcore")  # fmt: skip
UNREDACTED_SIGNATURE = re.compile(r"sig(=|%3D)(?!REDACTED)", re.IGNORECASE)


def log_texts(records: list[logging.LogRecord]) -> list[str]:
    """Everything a handler could write: the message, the traceback and our JSON line."""
    formatter = JsonFormatter()
    texts = []
    for record in records:
        texts += [record.getMessage(), record.exc_text or "", formatter.format(record)]
    return texts


@pytest.mark.e2e
def test_no_secret_reaches_the_logs_of_an_upload_send_and_inbound_mms(
    carrier_app: App, base_url: str, account: TenantAccount, contract: Contract,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    for name in LOUD_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    created = contract.response(upload(base_url, account, upload_body(contract, account)), 201)
    uri = created.json()["uri"]
    assert requests.get(uri, timeout=10).status_code == 200  # urllib3 logs the SAS URL
    message = {"from": account.number, "to": ["+15559876543"], "body": "hi", "mediaUrls": [uri]}
    sent = requests.post(f"{base_url}/api/v1/messages", json=message, auth=account.auth, timeout=30)
    location = sent.json()["messages"][0]["location"]
    jpeg = base64.b64decode(contract.example("/v1/media", "post", "base64")["data"])
    with (
        media_server({"/p.jpg": (jpeg, "image/jpeg")}) as media,
        receiving(Receiver(secret="")) as receiver,
    ):
        tenant = carrier_app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        event = sample_event(to=account.number, messageId=f"SM{uuid.uuid4().hex}",
                             attachments=[{"name": "p.jpg", "url": f"{media}/p.jpg"}])  # fmt: skip
        reply = post_inbound(base_url, event)
        assert reply.status_code == 200, reply.text
        eventually(lambda: receiver.verified)
    eventually(lambda: requests.get(f"{base_url}{location}", auth=account.auth, timeout=10)
               .json()["status"] == "delivered")  # fmt: skip

    texts = log_texts(caplog.records)
    joined = "\n".join(texts)
    basic_token = account.authorization.split()[1]
    secret_key = tenant.webhook_secrets[0].removeprefix("whsec_")
    for secret in (PASSWORD, basic_token, DEV_KEY, secret_key, CARRIER_SECRET):
        assert secret not in joined
    assert not [t for t in texts if UNREDACTED_SIGNATURE.search(t)]
    # The test saw what it guards against: SAS URLs were logged, with their signatures removed.
    assert "sig=REDACTED" in joined


def test_redaction_covers_credentials_keys_and_signing_secrets() -> None:
    line = (
        "GET https://a.blob.core.windows.net/c/b?sv=1&sig=abc%2Bdef&se=2 "
        "Authorization: Basic dXNlcjpwYXNz Bearer eyJ0eXAi.eyJzdWIi.c2ln "
        "SharedKey devstoreaccount1:Zm9vYmFy AccountKey=Zm9v/YmFy==;EndpointSuffix=x "
        "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw sig%3Dabc"
    )
    cleaned = redact(line)
    for secret in ("abc%2Bdef", "dXNlcjpwYXNz", "eyJ0eXAi", "Zm9vYmFy", "Zm9v/YmFy",
                   "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "%3Dabc"):  # fmt: skip
        assert secret not in cleaned
    assert "sv=1&sig=REDACTED&se=2" in cleaned and "EndpointSuffix=x" in cleaned


# The name each queue or blob shim calls its domain code by: a function of the shim's module,
# or a collaborator of the app (`current().x.y`).
DOMAIN_CALLS = {
    "deliver_message": "current().message_deliveries.handle",
    "deliver_webhook": "current().webhooks.handle",
    "process_inbound": "current().inbound.process",
    "optimize_media": "optimize_blob",
    "receive_upload": "current().staging.receive",
    "deliveries_poison": "current().message_deliveries.fail_poisoned",
    "inbound_poison": "current().inbound.fail_poisoned",
    "webhooks_poison": "current().webhooks.dead_letter_poisoned",
    "sweep_storage": "sweep",
    "recover_inbound": "current().inbound_recovery.run",
}


def replace_domain_call(
    monkeypatch: pytest.MonkeyPatch, module: Any, call: str, replacement: Any
) -> None:
    if not call.startswith("current()."):
        monkeypatch.setattr(module, call, replacement)
        return
    *path, name = call.removeprefix("current().").split(".")
    app: Any = SimpleNamespace(**{name: replacement})
    for attribute in reversed(path):
        app = SimpleNamespace(**{attribute: app})
    monkeypatch.setattr(module, "current", lambda: app)


def invoke(function: Function) -> Invocation:
    """One invocation of a background function through Microsoft's worker."""
    trigger, fn = function.trigger, function.loaded
    if trigger["type"] == "queueTrigger":
        return worker().invoke_queue(
            fn, "{}", message_id="m1", dequeue_count=1, insertion_time=None,
            expiration_time=None, next_visible_time=None, pop_receipt=None,
        )  # fmt: skip
    if trigger["type"] == "timerTrigger":
        return worker().invoke_timer(fn, past_due=False, last=None, next_due=datetime.now())
    return worker().invoke_blob(
        fn, "attachments/x/y.jpg", b"", uri="http://x/y.jpg", properties={}, metadata={}
    )


def test_every_background_function_logs_under_its_invocation_id(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    host = LocalHost()
    background = [*host.queue_functions, *host.blob_functions, *host.timer_functions]
    assert {f.name for f in background} == set(DOMAIN_CALLS), "name the new shim's domain call"
    caplog.set_level(logging.INFO)
    for function in background:
        seen: list[str] = []

        def domain_call(*args: Any, _seen: list[str] = seen, _name: str = function.name) -> None:
            _seen.append(correlation_id.get())
            logging.getLogger("tests.contract").info("inside %s", _name)

        # The worker imports a function folder as a submodule of its `__app__` namespace.
        shim = sys.modules[f"__app__.{function.name}"]
        replace_domain_call(monkeypatch, shim, DOMAIN_CALLS[function.name], domain_call)
        answer = invoke(function)
        [record] = [r for r in caplog.records if r.getMessage() == f"inside {function.name}"]
        assert seen == [answer.invocation_id]
        assert record in answer.logs  # the worker reports it among the invocation's logs
        assert getattr(record, "correlation_id", None) == answer.invocation_id
        assert json.loads(JsonFormatter().format(record))["correlationId"] == answer.invocation_id
    assert correlation_id.get() == "-"  # nothing leaks past an invocation
