"""One POST (a send or an upload, with its Idempotency-Key) run in this process, which dies by
SIGKILL at a named step, as a host killed mid-request does: no handler, no `finally`, nothing
after that instruction runs. What the request was about to record as its answer (when it got
that far) is printed first, so a test can compare it with the retry's.

    python -m tests.killed_request CONNECTION send|upload STEP AUTHORIZATION KEY BODY_FILE
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, cast

from azure.data.tables import TableClient

import send_message
import upload_media
from shared.app import App, install
from shared.idempotency import TABLE as IDEMPOTENCY_TABLE
from shared.media.store import MEDIA_TABLE
from shared.messages.store import MessageStore
from shared.settings import Settings
from tests.conftest import http_request
from tests.context import invocation_context


def die(*_: Any, **__: Any) -> Any:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class Dying:
    """A table whose chosen writes kill the process, before or after they happen."""

    def __init__(self, table: Any, write: str, *, after: bool, answer: bool = False) -> None:
        self._table, self._write, self._after, self._answer = table, write, after, answer

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._table, name)
        if name != self._write and not (self._answer and name.endswith("_entity")):
            return real

        def write(entity: Any, *args: Any, **kwargs: Any) -> Any:
            if self._answer:
                if not (isinstance(entity, dict) and entity.get("State") == "done"):
                    return real(entity, *args, **kwargs)
                print(entity["Body"])
                die()
            if not self._after:
                die()
            real(entity, *args, **kwargs)
            die()

        return write


def arm(app: App, step: str) -> None:
    tables = app.storage.table
    dying: dict[str, Dying] = {}
    if step == "after_claim":
        app.outbox.sender_tenant = die  # type: ignore[method-assign]
    elif step == "after_jobs":
        MessageStore.insert_many = die  # type: ignore[method-assign]
    elif step == "after_records":
        real_insert = MessageStore.insert_many

        def insert_then_die(self: MessageStore, messages: Any) -> None:
            real_insert(self, messages)
            die()

        MessageStore.insert_many = insert_then_die  # type: ignore[method-assign]
    elif step == "after_blob":
        dying[MEDIA_TABLE] = Dying(tables(MEDIA_TABLE), "create_entity", after=False)
    elif step == "after_media_record":
        dying[MEDIA_TABLE] = Dying(tables(MEDIA_TABLE), "create_entity", after=True)
    elif step == "before_answer_recorded":
        dying[IDEMPOTENCY_TABLE] = Dying(tables(IDEMPOTENCY_TABLE), "", after=True, answer=True)
    else:
        raise SystemExit(f"unknown step {step}")

    def table(name: str) -> TableClient:
        # A `Dying` stands in for the `TableClient` it wraps (every call is forwarded).
        return cast(TableClient, dying[name]) if name in dying else tables(name)

    app.storage.table = table  # type: ignore[method-assign]


def main(
    connection: str, kind: str, step: str, authorization: str, key: str, body_file: str
) -> None:
    app = App.build(Settings(media_storage_connection_string=connection))
    install(app)
    arm(app, step)
    with open(body_file, "rb") as f:
        body = f.read()
    upload = kind == "upload"
    request = http_request(
        "POST", "/api/v1/media" if upload else "/api/v1/messages", body=body,
        headers={"Authorization": authorization, "Idempotency-Key": key},
    )  # fmt: skip
    function = upload_media.main if upload else send_message.main
    response = function(request, invocation_context())
    raise SystemExit(f"not killed: {response.status_code} {response.get_body()!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
