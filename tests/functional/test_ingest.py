"""The one ingest path (`shared.media.ingest`) that uploads and inbound attachments share."""

from shared.app import App
from tests import samples
from tests.conftest import TenantAccount


def store(app: App, account: TenantAccount, data: bytes, *, optimize: bool = True) -> str:
    record = app.ingest.store(
        tenant_id=account.tenant_id,
        phone_number=account.number,
        file_name="wide.jpg",
        declared_type="image/jpg",
        data=data,
        source="inbound",
        optimize=optimize,
    )
    app.media.delete(record)
    return record.optimization_state


def test_a_photo_wider_than_the_carrier_side_waits_for_the_optimiser(
    app: App, account: TenantAccount
) -> None:
    assert store(app, account, samples.image("JPEG", (2000, 100))) == "pending"


def test_a_file_stored_without_optimisation_is_left_as_it_came(
    app: App, account: TenantAccount
) -> None:
    photo = samples.image("JPEG", (2000, 100))
    assert store(app, account, photo, optimize=False) == "not_needed"
