"""The operator CLI against Azurite."""

import io
import json

import pytest

from shared import admin
from shared.app import App
from shared.settings import Settings
from tests.conftest import unique_number


def run(app: App, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = admin.main(list(argv), app=app)
    out = capsys.readouterr().out
    return code, json.loads(out) if code == 0 else None


def test_cli_creates_tenant_user_and_number(
    app: App, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, tenant = run(app, capsys, "tenant-create", "Second Co")
    assert code == 0
    tenant_id = tenant["tenantId"]  # type: ignore[index]
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    code, _ = run(app, capsys, "user-create", "second@example.com", "--password-stdin")
    assert code == 0
    code, user = run(app, capsys, "user-grant", "second@example.com", tenant_id)
    assert user == {"email": "second@example.com", "tenantIds": [tenant_id]}
    number = unique_number()
    code, shown = run(app, capsys, "number-provision", tenant_id, number)
    assert shown["numbers"] == [number]  # type: ignore[index]
    code, again = run(app, capsys, "number-provision", tenant_id, number)
    assert code == 0 and again == shown
    code, secret = run(app, capsys, "webhook-rotate-secret", tenant_id)
    assert len(secret["webhookSecrets"]) == 2  # type: ignore[index]


def test_cli_reports_errors_without_a_trace(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    code = admin.main(["number-provision", "not-a-guid", "+15550000000"], app=app)
    assert code == 1
    assert "error:" in capsys.readouterr().err


def test_demo_seed_is_idempotent_on_the_emulator(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        code, _seeded = run(app, capsys, "seed-demo")
        assert code == 0
    assert app.directory.number_owner(admin.DEMO_NUMBER) == admin.DEMO_TENANT
    user = app.directory.get_user(admin.DEMO_EMAIL)
    assert user is not None and admin.DEMO_TENANT in user.tenant_ids


def test_demo_seed_refuses_real_storage() -> None:
    remote = Settings(
        media_storage_connection_string="DefaultEndpointsProtocol=https;AccountName=prod;"
        "AccountKey=a2V5;BlobEndpoint=https://example.net/;"
    )
    with pytest.raises(SystemExit, match="not the local emulator"):
        admin.main(["seed-demo"], app=App.build(remote))
