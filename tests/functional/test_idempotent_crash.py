"""A request with an Idempotency-Key whose process is killed (SIGKILL, in a subprocess) at each
step, then retried with its key at once: it converges on the one result the first run began, with
one batch (one gateway call per recipient) or one media item, and the retry's answer is the one
the first run was about to give."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import send_message
import upload_media
from shared.app import App
from shared.media.store import MEDIA_TABLE
from shared.messages.gateway import SANDBOX_TABLE
from shared.messages.service import DELIVERY_QUEUE
from shared.messages.store import TABLE as MESSAGES_TABLE
from shared.settings import Settings
from tests import samples
from tests.conftest import TenantAccount, eventually, http_request
from tests.context import invocation_context

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS = ["+15550001111", "+15550002222"]


def killed(
    settings: Settings, kind: str, step: str, account: TenantAccount, key: str, body: bytes,
    tmp_path: Path,
) -> dict[str, Any] | None:  # fmt: skip
    """Run the request in a process killed at `step`; the answer it was about to record, if any."""
    body_file = tmp_path / "body.json"
    body_file.write_bytes(body)
    connection = settings.media_storage_connection_string
    assert connection is not None
    out = subprocess.run(
        [sys.executable, "-m", "tests.killed_request", connection.get_secret_value(), kind, step,
         account.authorization, key, str(body_file)],
        cwd=ROOT, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == -signal.SIGKILL, out.stderr.decode()[-2000:]
    printed = out.stdout.decode().strip()
    return json.loads(printed) if printed else None


def post(function: Any, path: str, account: TenantAccount, key: str, body: bytes) -> Any:
    request = http_request(
        "POST", path, body=body,
        headers={"Authorization": account.authorization, "Idempotency-Key": key},
    )  # fmt: skip
    return function(request, invocation_context())


def rows(app: App, table: str, tenant_id: str) -> list[Any]:
    return list(
        app.storage.table(table).query_entities("PartitionKey eq @t", parameters={"t": tenant_id})
    )


def deliver_queued(app: App, tenant_id: str, ids: list[str]) -> None:
    """Work the delivery queue, as the runtime does, until every message is delivered."""
    queue = app.storage.queue(DELIVERY_QUEUE)
    store = app.messages

    def all_delivered() -> bool:
        for message in queue.receive_messages(max_messages=32, visibility_timeout=1):
            job = json.loads(message.content)
            if job.get("tenantId") == tenant_id:
                app.message_deliveries.run(job)
                queue.delete_message(message)
        found = [store.get(tenant_id, i) for i in ids]
        return all(m is not None and m.status == "delivered" for m in found)

    eventually(all_delivered, timeout=30)


@pytest.mark.parametrize(
    "step", ["after_claim", "after_jobs", "after_records", "before_answer_recorded"]
)
def test_send_killed_and_retried_with_its_key_is_one_batch_sent_once_per_recipient(
    app: App, settings: Settings, account: TenantAccount, step: str, tmp_path: Path
) -> None:
    body = json.dumps({"from": account.number, "to": RECIPIENTS, "body": "once only"}).encode()
    key = uuid.uuid4().hex
    first = killed(settings, "send", step, account, key, body, tmp_path)

    retry = post(send_message.main, "/api/v1/messages", account, key, body)

    assert retry.status_code == 202, retry.get_body()
    answer = json.loads(retry.get_body())
    assert first is None or answer == first
    again = post(send_message.main, "/api/v1/messages", account, key, body)
    assert json.loads(again.get_body()) == answer
    ids = [m["messageId"] for m in answer["messages"]]
    stored = rows(app, MESSAGES_TABLE, account.tenant_id)
    assert sorted(r["RowKey"] for r in stored) == sorted(ids)
    assert len({r["BatchId"] for r in stored}) == 1
    deliver_queued(app, account.tenant_id, ids)
    handed_over = rows(app, SANDBOX_TABLE, account.tenant_id)
    assert sorted(r["To"] for r in handed_over) == RECIPIENTS
    assert sorted(r["RowKey"] for r in handed_over) == sorted(ids)


@pytest.mark.parametrize("step", ["after_blob", "after_media_record", "before_answer_recorded"])
def test_upload_killed_and_retried_with_its_key_is_one_media_item(
    app: App, settings: Settings, account: TenantAccount, step: str, tmp_path: Path
) -> None:
    body = json.dumps(account.upload_json(samples.image("JPEG"))).encode()
    key = uuid.uuid4().hex
    first = killed(settings, "upload", step, account, key, body, tmp_path)

    retry = post(upload_media.main, "/api/v1/media", account, key, body)

    assert retry.status_code == 201, retry.get_body()
    answer = json.loads(retry.get_body())
    assert first is None or answer == first
    assert [r["RowKey"] for r in rows(app, MEDIA_TABLE, account.tenant_id)] == [answer["mediaId"]]
    container = app.storage.container(app.settings.media_container)
    blobs = [
        b.name for b in container.list_blobs(include=["metadata"])
        if (b.metadata or {}).get("tenantid") == account.tenant_id
    ]  # fmt: skip
    assert blobs == [f"{answer['mediaId']}/{answer['fileName']}"]
