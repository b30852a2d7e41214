"""The timer-triggered sweep: media blobs left without a record are found by their index tag and
removed after a grace period, at a cost that follows them and not the recorded media; expired
idempotency claims are removed through their expiry pointers."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError
from azure.core.pipeline.transport import RequestsTransport

import sweep_storage
from shared.app import App
from shared.errors import StorageUnavailable
from shared.http import replayed
from shared.idempotency import TABLE, Idempotency
from shared.media import optimization
from shared.media.store import MEDIA_TABLE, UNRECORDED_TAG, MediaRecord
from shared.media.sweep import sweep_orphan_blobs
from tests import samples
from tests.conftest import TenantAccount, app_with, eventually
from tests.context import invocation_context

LATER = datetime.now(UTC) + timedelta(hours=1)
JPEG = samples.image("JPEG")


@pytest.fixture
def own(app: App) -> Iterator[App]:
    suffix = uuid.uuid4().hex[:8]
    with app_with(
        app, media_container=f"sweep-{suffix}", originals_container=f"sweeporig-{suffix}"
    ) as changed:
        yield changed


def put(app: App, account: TenantAccount, media_id: str | None = None, **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "tenant_id": account.tenant_id, "phone_number": account.number, "file_name": "a.jpg",
        "original_file_name": "a.jpg", "content_type": "image/jpeg", "data": JPEG,
        "optimization_state": "not_needed", "media_id": media_id, **changes,
    }  # fmt: skip
    return app.media.put(**fields)


def put_whose_record_write_fails(
    app: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch, media_id: str
) -> None:
    """A put under an Idempotency-Key's media id whose record write finds storage unreachable:
    the blob stays for the key's retry to adopt."""
    real_table = app.storage.table

    class Unreachable:
        def __init__(self, table: Any) -> None:
            self._table = table

        def create_entity(self, entity: Any) -> Any:
            raise ServiceRequestError("storage unreachable")

        def __getattr__(self, name: str) -> Any:
            return getattr(self._table, name)

    def table(name: str) -> Any:
        found = real_table(name)
        return Unreachable(found) if name == MEDIA_TABLE else found

    monkeypatch.setattr(app.storage, "table", table)
    with pytest.raises(StorageUnavailable):
        put(app, account, media_id)
    monkeypatch.setattr(app.storage, "table", real_table)


def names(app: App, container: str) -> set[str]:
    return {b.name for b in app.storage.container(container).list_blobs()}


def tags(app: App, name: str) -> dict[str, str]:
    blob = app.storage.blobs.get_blob_client(app.settings.media_container, name)
    return dict(blob.get_blob_tags())


def listed(app: App) -> set[str]:
    return {blob.name for blob in app.media.unrecorded_blobs(LATER, 100)}


def test_an_upload_whose_record_write_failed_leaves_a_tagged_blob_swept_after_the_grace(
    own: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    media_id = uuid.uuid4().hex
    put_whose_record_write_fails(own, account, monkeypatch, media_id)
    lost = f"{media_id}/a.jpg"
    assert UNRECORDED_TAG in tags(own, lost)
    own.storage.container(own.settings.originals_container).upload_blob(lost, b"original")
    own.storage.container(own.settings.media_container).upload_blob("foreign.txt", b"not ours")

    assert sweep_orphan_blobs(own.media) == 0  # young: its upload may still be running
    assert lost in names(own, own.settings.media_container)
    assert sweep_orphan_blobs(own.media, now=LATER) == 1
    assert names(own, own.settings.media_container) == {"foreign.txt"}
    assert names(own, own.settings.originals_container) == set()


def test_a_recorded_upload_carries_no_tag_and_is_never_listed(
    own: App, account: TenantAccount
) -> None:
    kept = put(own, account)
    eventually(lambda: tags(own, kept.blob_name) == {})  # removed just after the answer
    assert listed(own) == set()
    assert sweep_orphan_blobs(own.media, now=LATER) == 0
    assert kept.blob_name in names(own, own.settings.media_container)


def optimise(app: App, record: MediaRecord) -> None:
    container = app.settings.media_container
    client = app.storage.blobs.get_blob_client(container, record.blob_name)
    downloader = client.download_blob()
    data = downloader.readall()
    event = func.blob.InputStream(
        data=data, name=f"{container}/{record.blob_name}", uri=client.url, length=len(data),
        blob_properties={"ETag": downloader.properties.etag},
        metadata=dict(downloader.properties.metadata or {}),
    )  # fmt: skip
    optimization.optimize_blob(event, app.media, app.settings, app.carriers)


def test_optimised_media_is_never_listed_nor_removed(own: App, account: TenantAccount) -> None:
    big = samples.image("JPEG", (2000, 1500))
    plain = put(own, account, optimization_state="pending", data=big)
    # Optimised while still tagged: its record was written, the tag's removal not yet.
    raced = put(own, account, optimization_state="pending", data=big)
    blob = own.storage.blobs.get_blob_client(own.settings.media_container, raced.blob_name)
    blob.set_blob_tags({UNRECORDED_TAG: f"2001-01-01T00:00:00.000000Z {account.tenant_id}"})
    for record in (plain, raced):
        optimise(own, record)
        optimised = own.media.get({account.tenant_id}, record.media_id)
        assert optimised is not None and optimised.optimization_state == "optimized"

    assert listed(own) <= {raced.blob_name}  # the replacing write may clear the tag itself
    assert sweep_orphan_blobs(own.media, now=LATER) == 0
    assert listed(own) == set()
    both = {plain.blob_name, raced.blob_name}
    assert names(own, own.settings.media_container) == both
    assert names(own, own.settings.originals_container) == both


def test_a_tag_left_on_a_recorded_blob_is_removed_not_the_blob(
    own: App, account: TenantAccount
) -> None:
    kept = put(own, account)
    blob = own.storage.blobs.get_blob_client(own.settings.media_container, kept.blob_name)
    blob.set_blob_tags({UNRECORDED_TAG: f"2001-01-01T00:00:00.000000Z {account.tenant_id}"})
    assert sweep_orphan_blobs(own.media, now=LATER) == 0
    assert tags(own, kept.blob_name) == {}
    assert kept.blob_name in names(own, own.settings.media_container)


def test_a_retry_adopting_a_listed_blob_renews_its_tag_so_the_sweep_leaves_it(
    own: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    media_id = uuid.uuid4().hex
    put_whose_record_write_fails(own, account, monkeypatch, media_id)
    [found] = own.media.unrecorded_blobs(LATER, 10)
    # The key's retry adopts the blob and fails again: the blob keeps a (renewed) tag ...
    put_whose_record_write_fails(own, account, monkeypatch, media_id)
    renewed = tags(own, found.name)[UNRECORDED_TAG]
    assert renewed > found.since
    # ... so the sweep, acting on what it listed before, neither deletes nor untags it.
    assert not own.media.settle_unrecorded(found)
    assert tags(own, found.name) == {UNRECORDED_TAG: renewed}
    recorded = put(own, account, media_id)
    assert recorded.media_id == media_id
    eventually(lambda: tags(own, found.name) == {})


def requests_sent(
    monkeypatch: pytest.MonkeyPatch, needles: tuple[str, ...], action: Callable[[], object]
) -> list[str]:
    """The URLs of the storage requests `action` sends that contain one of `needles`."""
    urls: list[str] = []
    real_send: Callable[..., Any] = RequestsTransport.send

    def send(transport: RequestsTransport, request: Any, **kwargs: Any) -> Any:
        if any(needle in request.url for needle in needles):
            urls.append(request.url)
        return real_send(transport, request, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(RequestsTransport, "send", send)
        action()
    return urls


def test_a_sweep_costs_calls_per_tagged_blob_not_per_recorded_media(
    own: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sweep_calls(recorded: int) -> list[str]:
        for _ in range(recorded):
            put(own, account)
        put_whose_record_write_fails(own, account, monkeypatch, uuid.uuid4().hex)
        needles = (own.settings.media_container, own.settings.originals_container, "/media(")
        urls = requests_sent(monkeypatch, needles, lambda: sweep_orphan_blobs(own.media, now=LATER))
        assert not listed(own)  # the orphan went
        return urls

    few, many = sweep_calls(2), sweep_calls(20)
    assert len(few) == len(many) <= 5
    # One tag query, then per orphan: its record's point read, its delete, its original's delete.
    assert sum("where=" in url for url in many) == 1
    assert not any("comp=list" in url and "where=" not in url for url in many)


def test_the_timer_function_runs_the_sweep(
    own: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    media_id = uuid.uuid4().hex
    put_whose_record_write_fails(own, account, monkeypatch, media_id)
    sweep_storage.main(
        func.timer.TimerRequest(past_due=False), invocation_context()
    )  # 15 minutes: too young still
    assert f"{media_id}/a.jpg" in names(own, own.settings.media_container)


# Long past, so that no other test's claims fall in the hours these sweeps cover; each test has
# its own days, and those that leave claims behind come after those that count removals.
T0 = datetime(2001, 1, 1, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def answered(seed: str | None) -> func.HttpResponse:
    return func.HttpResponse('{"ok":true}', status_code=201, mimetype="application/json")


def claimed(app: App, scope: str, key: str) -> bool:
    partition = hashlib.sha256(scope.encode()).hexdigest()
    try:
        app.storage.table(TABLE).get_entity(partition, hashlib.sha256(key.encode()).hexdigest())
    except ResourceNotFoundError:
        return False
    return True


def test_expired_idempotency_claims_are_removed_and_unexpired_ones_kept(app: App) -> None:
    clock, scope = Clock(T0), f"test:{uuid.uuid4()}"
    keys = Idempotency(app.storage, clock, replay=replayed)
    keys.run(scope, "old", b"{}", answered)
    clock.now = T0 + timedelta(hours=20)
    keys.run(scope, "recent", b"{}", answered)

    clock.now = T0 + timedelta(hours=25, minutes=30)
    assert keys.remove_expired() >= 1
    assert not claimed(app, scope, "old") and claimed(app, scope, "recent")
    clock.now = T0 + timedelta(hours=45, minutes=30)
    keys.remove_expired()
    assert not claimed(app, scope, "recent")


def test_a_key_claimed_anew_after_expiry_outlives_its_first_claims_pointer(app: App) -> None:
    clock, scope = Clock(T0 + timedelta(days=3)), f"test:{uuid.uuid4()}"
    keys = Idempotency(app.storage, clock, replay=replayed)
    keys.run(scope, "k", b"{}", answered)
    clock.now += timedelta(hours=25)
    assert keys.run(scope, "k", b"{}", answered).headers.get("Idempotent-Replayed") is None
    clock.now += timedelta(hours=1)
    keys.remove_expired()
    assert claimed(app, scope, "k")
    assert keys.run(scope, "k", b"{}", answered).headers["Idempotent-Replayed"] == "true"


def test_expired_claims_are_removed_a_bounded_batch_per_run(app: App) -> None:
    clock, scope = Clock(T0 - timedelta(days=10)), f"test:{uuid.uuid4()}"
    keys = Idempotency(app.storage, clock, replay=replayed)
    for key in ("a", "b", "c"):
        keys.run(scope, key, b"{}", answered)
    clock.now += timedelta(hours=26)
    assert keys.remove_expired(limit=2) == 2
    assert sum(claimed(app, scope, key) for key in ("a", "b", "c")) == 1
    assert keys.remove_expired(limit=2) == 1
