"""Conformance with Microsoft's Python worker (`azure-functions-runtime-v1`): every function folder
loads through it, one invocation per trigger type succeeds against Azurite, and the trigger
metadata the local host builds reaches `main` as Azure's binding objects carry it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.app import App
from tools.functions_worker import FunctionFailed, LoadedFunction, worker
from tools.localhost import ROOT

FOLDERS = sorted(p.parent.name for p in ROOT.glob("*/function.json"))

PROBE = """
import azure.functions as func

from {module} import SEEN


def main({name}: {annotation}, context: func.Context) -> None:
    SEEN.append(({name}, context))
"""

SEEN: list[tuple[Any, Any]] = []


def load(folder: Path) -> LoadedFunction:
    return worker().load(folder, json.loads((folder / "function.json").read_text()))


def probe(root: Path, binding: dict[str, Any], annotation: str) -> LoadedFunction:
    """A function folder whose `main` keeps what the worker hands it."""
    folder = root / f"probe_{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "function.json").write_text(json.dumps({"bindings": [binding]}))
    code = PROBE.format(module=__name__, name=binding["name"], annotation=annotation)
    (folder / "__init__.py").write_text(code)
    SEEN.clear()
    return load(folder)


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_function_folder_loads_through_the_runtime(folder: str) -> None:
    loaded = load(ROOT / folder)
    assert loaded.name == folder


def test_the_runtime_is_the_pinned_release_with_the_hosts_capabilities() -> None:
    requirements = (ROOT / "requirements.txt").read_text()
    pinned = next(line for line in requirements.splitlines() if line.startswith("azure-functions-"))
    assert pinned.split(";")[0] == "azure-functions-runtime-v1==1.2.0"
    assert worker().capabilities["RawHttpBodyBytes"] == "true"


def test_http_invocation_answers_rpc_http(app: App) -> None:
    health = load(ROOT / "health")
    answer = worker().invoke_http(health, "GET", "http://localhost:7071/api/health", {}, b"", {})
    assert answer.status == 200
    assert ("content-type", "application/json") in [(k.lower(), v) for k, v in answer.headers]
    assert json.loads(answer.body)["storage"] == {"blob": "ok", "queue": "ok", "table": "ok"}


def test_queue_invocation_of_a_project_function_succeeds(app: App) -> None:
    answer = worker().invoke_queue(
        load(ROOT / "inbound_poison"), "not json", message_id="m1", dequeue_count=5,
        insertion_time=None, expiration_time=None, next_visible_time=None, pop_receipt=None,
    )  # fmt: skip
    assert answer.return_value is None


def test_blob_invocation_of_a_project_function_succeeds(app: App) -> None:
    answer = worker().invoke_blob(
        load(ROOT / "optimize_media"), "elsewhere/not-media.txt", b"x", uri="http://x/y",
        properties={"ContentLength": 1}, metadata={},
    )  # fmt: skip
    assert any("not a media blob" in r.getMessage() for r in answer.logs)


def test_timer_invocation_of_a_project_function_succeeds(app: App) -> None:
    now = datetime.now(UTC)
    answer = worker().invoke_timer(load(ROOT / "sweep_storage"), past_due=False, last=None,
                                   next_due=now + timedelta(minutes=15))  # fmt: skip
    assert answer.return_value is None


def test_a_queue_message_reaches_main_with_its_trigger_metadata(app: App, tmp_path: Path) -> None:
    function = probe(tmp_path, {"type": "queueTrigger", "direction": "in", "name": "msg",
                                "queueName": "q", "connection": "S"}, "func.QueueMessage")  # fmt: skip
    queue = app.storage.queue(f"conformance{uuid.uuid4().hex[:8]}")
    queue.send_message('{"a": 1}')
    [message] = list(queue.receive_messages(max_messages=1))
    assert message.dequeue_count is not None  # a received message has been dequeued
    worker().invoke_queue(
        function, message.content, message_id=message.id, dequeue_count=message.dequeue_count,
        insertion_time=message.inserted_on, expiration_time=message.expires_on,
        next_visible_time=message.next_visible_on, pop_receipt=message.pop_receipt,
    )  # fmt: skip
    [(msg, context)] = SEEN
    assert msg.get_body() == b'{"a": 1}' and msg.get_json() == {"a": 1}
    assert (msg.id, msg.dequeue_count, msg.pop_receipt) == (message.id, 1, message.pop_receipt)
    assert msg.insertion_time == message.inserted_on
    assert msg.expiration_time == message.expires_on
    assert msg.time_next_visible == message.next_visible_on
    assert context.function_name == function.name


def test_a_blob_reaches_main_with_its_event_grid_metadata(app: App, tmp_path: Path) -> None:
    function = probe(tmp_path, {"type": "blobTrigger", "direction": "in", "name": "blob",
                                "path": "box/{name}", "connection": "S", "source": "EventGrid"},
                     "func.InputStream")  # fmt: skip
    worker().invoke_blob(
        function, "box/a/b.txt", b"payload", uri="http://127.0.0.1/box/a/b.txt",
        properties={"ETag": '"0x1"', "ContentLength": 7}, metadata={"tenantid": "t1"},
    )  # fmt: skip
    [(blob, _)] = SEEN
    assert (blob.name, blob.uri, blob.length) == ("box/a/b.txt", "http://127.0.0.1/box/a/b.txt", 7)
    assert blob.read() == b"payload"
    assert blob.blob_properties["ETag"] == '"0x1"' and blob.metadata == {"tenantid": "t1"}


def test_a_timer_reaches_main_with_its_schedule_status(app: App, tmp_path: Path) -> None:
    function = probe(tmp_path, {"type": "timerTrigger", "direction": "in", "name": "timer",
                                "schedule": "0 */5 * * * *"}, "func.TimerRequest")  # fmt: skip
    due = datetime(2030, 1, 1, 12, 5, tzinfo=UTC)
    worker().invoke_timer(function, past_due=True, last=due - timedelta(minutes=5), next_due=due)
    [(timer, _)] = SEEN
    assert timer.past_due is True
    assert timer.schedule_status["Next"] == due.isoformat()


def test_an_exception_in_main_comes_back_as_the_runtimes_rpc_exception(tmp_path: Path) -> None:
    folder = tmp_path / f"raiser_{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "function.json").write_text(json.dumps({"bindings": [
        {"type": "queueTrigger", "direction": "in", "name": "msg", "queueName": "q"}]}))  # fmt: skip
    (folder / "__init__.py").write_text("def main(msg):\n    raise ValueError('bad ' + msg.id)\n")
    function = load(folder)
    with pytest.raises(FunctionFailed) as failed:
        worker().invoke_queue(
            function, "x", message_id="m7", dequeue_count=1, insertion_time=None,
            expiration_time=None, next_visible_time=None, pop_receipt=None,
        )  # fmt: skip
    assert failed.value.message == "ValueError: bad m7"
    assert "raise ValueError" in failed.value.stack_trace
