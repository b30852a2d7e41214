"""The typed table boundary on Azurite: rows round-trip through their model, and every storage
failure arrives as the project's own error."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.data.tables import TableClient
from pydantic import Field

from shared.app import App
from shared.errors import AlreadyExists, ChangedMeanwhile, StorageRejected, StorageUnavailable
from shared.tables import JsonText, Row, Table, retry_on_change


class Note(Row):
    text: str
    count: int = 0
    tags: JsonText[list[str]] = Field(default_factory=list)
    reason: str | None = None


@pytest.fixture
def notes(app: App) -> Table[Note]:
    return Table(app.storage.table(f"notes{uuid.uuid4().hex[:12]}"), Note)


def note(**fields: Any) -> Note:
    return Note(partition_key="p", row_key=uuid.uuid4().hex, text="hi", **fields)


def test_a_row_round_trips_with_pascal_case_columns_and_json_text(notes: Table[Note]) -> None:
    written = notes.insert(note(tags=["a", "b"], count=3))
    raw = notes._client.get_entity("p", written.row_key)
    assert raw["Text"] == "hi" and raw["Count"] == 3 and raw["Tags"] == '["a","b"]'
    assert "Reason" not in raw  # None columns are left out
    read = notes.get("p", written.row_key)
    assert read is not None and read.tags == ["a", "b"] and read.etag


def test_a_missing_row_reads_as_none(notes: Table[Note]) -> None:
    assert notes.get("p", "nothing") is None


def test_inserting_a_taken_key_is_row_exists(notes: Table[Note]) -> None:
    first = notes.insert(note())
    with pytest.raises(AlreadyExists) as raised:
        notes.insert(first)
    assert raised.value.status == 409


def test_a_conditional_update_that_lost_the_race_is_row_changed(notes: Table[Note]) -> None:
    row = notes.insert(note())
    notes.update(row.changed(count=1))
    with pytest.raises(ChangedMeanwhile) as raised:
        notes.update(row.changed(count=2))  # the etag it was read with is stale
    assert raised.value.status == 409


def test_updating_a_row_that_vanished_is_row_changed(notes: Table[Note]) -> None:
    row = notes.insert(note())
    notes.delete("p", row.row_key)
    with pytest.raises(ChangedMeanwhile):
        notes.update(row.changed(count=1))


def test_unconditional_delete_of_a_missing_row_is_fine(notes: Table[Note]) -> None:
    notes.delete("p", "never-was")


def test_retry_on_change_rereads_until_it_wins(notes: Table[Note]) -> None:
    row = notes.insert(note())
    notes.update(row.changed(count=5))
    stale = [row]  # the first try writes over a version that is gone

    def bump() -> Note:
        current = stale.pop() if stale else notes.get("p", row.row_key)
        assert current is not None
        return notes.update(current.changed(count=current.count + 1))

    assert retry_on_change(bump).count == 6


def test_transactions_translate_a_taken_key(notes: Table[Note]) -> None:
    taken = notes.insert(note())
    with pytest.raises(AlreadyExists):
        notes.transact([("create", note()), ("create", taken)])


def test_a_refused_request_is_storage_rejected_not_a_raw_sdk_error(notes: Table[Note]) -> None:
    with pytest.raises(StorageRejected):
        notes.insert(Note(partition_key="p", row_key="bad/key", text="x"))


def test_unreachable_storage_is_storage_unavailable() -> None:
    client = TableClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
        table_name="nowhere",
        retry_total=0,
        connection_timeout=1,
    )
    with pytest.raises(StorageUnavailable):
        Table(client, Note).get("p", "r")
