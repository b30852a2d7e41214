"""Typed rows on Azure Table Storage: one `Table[R]` per table, where storage errors become ours.

A table's row is a pydantic model (`Row` subclass): its field names are the table's column names
(PascalCase aliases, declared once on the model), so no module spells a column as a string and a
renamed field cannot fail silently. JSON-valued columns use `JsonText[...]`.

Every call goes through `shared.storage.storage_errors()`, so callers see only the project's
errors: `AlreadyExists` for a taken key, `ChangedMeanwhile` for a conditional write that lost
(re-read and retry with `retry_on_change`, or answer the 409), `StorageUnavailable` and
`StorageRejected`. `get` answers None for a missing row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Annotated, Any, Literal, Self, TypeVar

from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_pascal

from shared.errors import ChangedMeanwhile
from shared.storage import Storage, storage_errors

T = TypeVar("T")
_IF_UNCHANGED = MatchConditions.IfNotModified
R = TypeVar("R", bound="Row")


def _json_loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


# A column holding JSON text (lists and objects cannot be table properties).
JsonText = Annotated[
    T,
    BeforeValidator(_json_loads),
    PlainSerializer(lambda v: json.dumps(v, separators=(",", ":")), return_type=str),
]


class Row(BaseModel):
    """A table row. Subclasses name their keys' meaning with properties if they like; the
    column names are the fields' PascalCase names unless a field gives its own alias."""

    model_config = ConfigDict(
        alias_generator=to_pascal, populate_by_name=True, extra="ignore", frozen=True
    )

    # Columns PartitionKey and RowKey, by the alias generator (an explicit alias would hide the
    # field names from type checkers' view of the constructor).
    partition_key: str
    row_key: str
    etag: str | None = Field(default=None, exclude=True)

    def entity(self) -> dict[str, Any]:
        """The row as the SDK stores it; None-valued columns are left out."""
        return self.model_dump(by_alias=True, exclude_none=True)

    def changed(self, **fields: Any) -> Self:
        """A copy with fields replaced (validated), keeping the etag."""
        return self.model_validate({**self.model_dump(), **fields, "etag": self.etag})


class TenantScoped(Row):
    """A row whose partition is its tenant."""

    @property
    def tenant_id(self) -> str:
        return self.partition_key


def key_also_named(name: str, column: Literal["PartitionKey", "RowKey"]) -> Any:
    """A key field a row's model also accepts under its domain name, e.g.
    `partition_key: str = key_also_named("tenant_id", "PartitionKey")`, so rows are built as
    `Message(tenant_id=..., ...)` (add a property to read it by that name)."""
    return Field(validation_alias=AliasChoices(column, name), serialization_alias=column)


Op = tuple[Literal["create", "upsert", "update", "delete"], "Row"]


class Table[R: "Row"]:
    """One table of rows of type `R`. Given a function that makes the client (e.g.
    `functools.partial(storage.table, name)`, or `Table.of`), the table is reached, and created,
    on first use: the composition root builds its stores without any network call."""

    def __init__(self, client: TableClient | Callable[[], TableClient], row: type[R]) -> None:
        self._connect = client if callable(client) else lambda: client
        self._row = row

    @classmethod
    def of(cls, storage: Storage, name: str, row: type[R]) -> Table[R]:
        """Table `name` of `storage`, created on first use: building a store does no I/O."""
        return cls(lambda: storage.table(name), row)

    @property
    def _client(self) -> TableClient:
        return self._connect()

    @property
    def name(self) -> str:
        return self._client.table_name

    def _load(self, entity: Mapping[str, Any]) -> R:
        metadata = getattr(entity, "metadata", None) or {}
        return self._row.model_validate({**entity, "etag": metadata.get("etag")})

    def get(self, partition_key: str, row_key: str) -> R | None:
        try:
            with storage_errors():
                entity = self._client.get_entity(partition_key, row_key)
        except ChangedMeanwhile:  # a plain 404 on a read: no such row
            return None
        return self._load(entity)

    def insert(self, row: R) -> R:
        """Create `row`; `AlreadyExists` if its key is taken."""
        with storage_errors():
            metadata = self._client.create_entity(row.entity())
        return row.model_copy(update={"etag": metadata.get("etag")})

    def upsert(self, row: R, *, merge: bool = False) -> None:
        """Write unconditionally (last writer wins): only for rows a single writer owns."""
        mode = UpdateMode.MERGE if merge else UpdateMode.REPLACE
        with storage_errors():
            self._client.upsert_entity(row.entity(), mode=mode)

    def update(self, row: R, *, merge: bool = False) -> R:
        """Write `row` over the version it was read as (its etag); `ChangedMeanwhile` if it
        changed or vanished meanwhile."""
        if row.etag is None:
            raise ValueError("a conditional update needs the etag the row was read with")
        mode = UpdateMode.MERGE if merge else UpdateMode.REPLACE
        with storage_errors():
            metadata = self._client.update_entity(
                row.entity(),
                mode=mode,
                etag=row.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        return row.model_copy(update={"etag": metadata.get("etag")})

    def patch(self, partition_key: str, row_key: str, **columns: Any) -> None:
        """Merge the given columns (by column name) into an existing row, unconditionally;
        `ChangedMeanwhile` if the row does not exist."""
        entity = {"PartitionKey": partition_key, "RowKey": row_key, **columns}
        with storage_errors():
            self._client.update_entity(entity, mode=UpdateMode.MERGE)

    def delete(self, partition_key: str, row_key: str, *, etag: str | None = None) -> None:
        """Delete a row (only the version `etag` names, if given); a missing row is fine
        unconditionally, `ChangedMeanwhile` under a condition."""
        condition = MatchConditions.IfNotModified if etag else MatchConditions.Unconditionally
        with storage_errors():
            self._client.delete_entity(partition_key, row_key, etag=etag, match_condition=condition)

    def query(
        self,
        query_filter: str,
        parameters: dict[str, Any] | None = None,
        *,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[R]:
        """Rows matching an OData filter (use `@name` parameters, never string formatting)."""
        with storage_errors():
            pages = self._client.query_entities(
                query_filter, parameters=parameters, select=select, results_per_page=limit
            )
            for count, entity in enumerate(pages, 1):
                yield self._load(entity)
                if limit is not None and count >= limit:
                    return

    def rows(self, *, select: list[str] | None = None) -> Iterator[R]:
        """Every row of the table (a full scan: for operators' questions, not requests)."""
        with storage_errors():
            for entity in self._client.list_entities(select=select):
                yield self._load(entity)

    def keys_between(self, first: str, before: str, *, limit: int) -> Iterator[R]:
        """The keys of at most `limit` rows whose partition is in [`first`, `before`): one range
        query, e.g. the expiry pointers of the hours already past."""
        return self.query(
            "PartitionKey ge @first and PartitionKey lt @before",
            {"first": first, "before": before},
            select=["PartitionKey", "RowKey"],
            limit=limit,
        )

    def partition(self, partition_key: str) -> Iterator[R]:
        return self.query("PartitionKey eq @pk", {"pk": partition_key})

    def transact(self, operations: Iterable[Op]) -> None:
        """One atomic batch (one partition, at most 100 rows); `AlreadyExists` or
        `ChangedMeanwhile` as a single write would."""
        batch: list[Any] = []
        for kind, row in operations:
            if kind == "update":
                options = {"etag": row.etag, "match_condition": MatchConditions.IfNotModified}
                batch.append((kind, row.entity(), {"mode": UpdateMode.REPLACE, **options}))
            elif kind == "upsert":
                batch.append((kind, row.entity(), {"mode": UpdateMode.REPLACE}))
            else:
                batch.append((kind, row.entity()))
        if batch:
            with storage_errors():
                self._client.submit_transaction(batch)


def retry_on_change[T](attempt: Callable[[], T], *, tries: int = 5) -> T:
    """Run a read-modify-write until it does not lose a race (`ChangedMeanwhile`), at most `tries`
    times; the last loss is the caller's answer (409)."""
    for _ in range(tries - 1):
        try:
            return attempt()
        except ChangedMeanwhile:
            continue
    return attempt()
