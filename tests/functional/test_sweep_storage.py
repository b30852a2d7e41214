"""The timer-triggered sweep removes media blobs that no record points at, and nothing else."""

from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

import sweep_storage
from shared.app import App
from shared.media.sweep import sweep_orphan_blobs
from tests import samples
from tests.conftest import TenantAccount, app_with

LATER = datetime.now(UTC) + timedelta(hours=1)


@pytest.fixture
def own(app: App) -> App:
    with app_with(
        app, media_container="sweeptest", originals_container="sweeporiginals"
    ) as changed:
        yield changed  # type: ignore[misc]


def orphan(app: App, account: TenantAccount, media_id: str) -> str:
    name = f"{media_id}/lost.jpg"
    app.storage.container(app.settings.media_container).upload_blob(
        name, samples.image("JPEG"), metadata={"tenantid": account.tenant_id, "mediaid": media_id}
    )
    app.storage.container(app.settings.originals_container).upload_blob(name, b"original")
    return name


def names(app: App, container: str) -> set[str]:
    return {b.name for b in app.storage.container(container).list_blobs()}


def test_orphans_older_than_the_threshold_go_with_their_originals(
    own: App, account: TenantAccount
) -> None:
    lost = orphan(own, account, "a" * 32)
    kept = own.media.put(
        tenant_id=account.tenant_id, phone_number=account.number, file_name="kept.jpg",
        original_file_name="kept.jpg", content_type="image/jpeg", data=samples.image("JPEG"),
        optimization_state="not_needed",
    )  # fmt: skip
    own.storage.container(own.settings.media_container).upload_blob("foreign.txt", b"not ours")
    assert sweep_orphan_blobs(own, now=LATER) == 1
    remaining = names(own, own.settings.media_container)
    assert lost not in remaining and kept.blob_name in remaining and "foreign.txt" in remaining
    assert lost not in names(own, own.settings.originals_container)


def test_young_blobs_are_left_for_their_upload_to_finish(own: App, account: TenantAccount) -> None:
    young = orphan(own, account, "b" * 32)
    assert sweep_orphan_blobs(own) == 0
    assert young in names(own, own.settings.media_container)


def test_the_timer_function_runs_the_sweep(own: App, account: TenantAccount) -> None:
    lost = orphan(own, account, "c" * 32)
    sweep_storage.main(func.timer.TimerRequest(past_due=False), None)  # 15 minutes: too young still
    assert lost in names(own, own.settings.media_container)
