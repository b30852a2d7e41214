"""The local host's queue and blob triggers, driven only by function.json, against Azurite."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.app import App
from tests.conftest import eventually
from tools.localhost import BLOB_POISON_QUEUE, LocalHost, TriggerRunner

QUEUE_HANDLER = """
import azure.functions as func

from {module} import record


def main(msg: func.queue.QueueMessage) -> None:
    body = msg.get_body().decode()
    if body.startswith("fail"):
        raise RuntimeError("boom")
    record("{name}", body, msg.dequeue_count)
"""

BLOB_HANDLER = """
import azure.functions as func

from {module} import record


def main(blob: func.blob.InputStream) -> None:
    content = blob.read().decode()
    if content.startswith("fail"):
        raise RuntimeError("boom")
    record("{name}", blob.name, content)
"""

TIMER_HANDLER = """
import azure.functions as func

from {module} import record


def main(timer: func.TimerRequest) -> None:
    record("{name}", timer.past_due)
"""

SEEN: list[tuple[object, ...]] = []


def record(*values: object) -> None:
    SEEN.append(values)


def write_function(root: Path, name: str, binding: dict[str, object], code: str) -> None:
    folder = root / name
    folder.mkdir()
    (folder / "function.json").write_text(json.dumps({"bindings": [binding]}))
    (folder / "__init__.py").write_text(code.format(module=__name__, name=name))


@pytest.fixture
def runner(app: App, tmp_path: Path) -> Iterator[tuple[TriggerRunner, str, str]]:
    suffix = uuid.uuid4().hex[:8]
    queue, container = f"q{suffix}", f"c{suffix}"
    (tmp_path / "host.json").write_text(
        '{"version": "2.0", "extensions": {"queues": {"maxDequeueCount": 2, "visibilityTimeout": "00:00:00"}}}'
    )
    write_function(
        tmp_path, f"lhq_{suffix}",
        {"type": "queueTrigger", "direction": "in", "name": "msg", "queueName": queue, "connection": "S"},
        QUEUE_HANDLER,
    )  # fmt: skip
    write_function(
        tmp_path, f"lhb_{suffix}",
        {"type": "blobTrigger", "direction": "in", "name": "blob", "path": f"{container}/{{name}}", "connection": "S"},
        BLOB_HANDLER,
    )  # fmt: skip
    write_function(
        tmp_path, f"lht_{suffix}",
        {"type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "* * * * * *"},
        TIMER_HANDLER,
    )  # fmt: skip
    SEEN.clear()
    triggers = TriggerRunner(LocalHost(tmp_path), app.storage, poll_seconds=0.05)
    triggers.start()
    yield triggers, queue, container
    triggers.stop()


def test_queue_messages_reach_main_and_are_deleted(
    app: App, runner: tuple[TriggerRunner, str, str]
) -> None:
    _, queue, _ = runner
    app.storage.queue(queue).send_message("hello")
    eventually(lambda: any(v[1] == "hello" for v in SEEN))
    assert [v[2] for v in SEEN if v[1] == "hello"] == [1]
    eventually(
        lambda: app.storage.queue(queue).get_queue_properties().approximate_message_count == 0
    )


def test_failing_message_is_retried_then_poisoned(
    app: App, runner: tuple[TriggerRunner, str, str]
) -> None:
    _, queue, _ = runner
    app.storage.queue(queue).send_message("fail please")
    poison = app.storage.queue(f"{queue}-poison")
    eventually(lambda: poison.peek_messages(max_messages=1), timeout=15)
    assert poison.peek_messages()[0].content == "fail please"


def test_new_blob_reaches_main_with_its_name_and_bytes(
    app: App, runner: tuple[TriggerRunner, str, str]
) -> None:
    _, _, container = runner
    app.storage.container(container).upload_blob("a/b.txt", b"payload")
    eventually(lambda: any(v[1] == f"{container}/a/b.txt" for v in SEEN))
    assert [v[2] for v in SEEN if v[1] == f"{container}/a/b.txt"] == ["payload"]


def test_failing_blob_is_retried_then_reported_on_the_poison_queue(
    app: App, runner: tuple[TriggerRunner, str, str]
) -> None:
    _, _, container = runner
    app.storage.container(container).upload_blob("bad.txt", b"fail always")
    poison = app.storage.queue(BLOB_POISON_QUEUE)

    def reported() -> bool:
        return any(
            json.loads(m.content)["ContainerName"] == container
            for m in poison.peek_messages(max_messages=32)
        )

    eventually(reported, timeout=15)
    assert not any(v[1] == f"{container}/bad.txt" for v in SEEN)


def test_timer_fires_on_its_schedule(runner: tuple[TriggerRunner, str, str]) -> None:
    eventually(lambda: sum(1 for v in SEEN if str(v[0]).startswith("lht_")) >= 2, timeout=5)
