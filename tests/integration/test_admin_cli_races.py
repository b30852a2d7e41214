"""The operator CLI's read-modify-writes while another writer changes the same row: each re-reads
and applies its change again, or, when it keeps losing, says so and exits 1 without a trace."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError

from shared import admin
from shared.app import App
from shared.tenancy import TenantDirectory
from tests.conftest import TenantAccount, make_account, unique_number


class Interfering:
    """A table client that lets another writer in just before its next `times` writes."""

    def __init__(self, client: Any, meanwhile: Callable[[], object], times: int = 1) -> None:
        self._client, self._meanwhile, self.times = client, meanwhile, times

    def _interfere(self) -> None:
        if self.times > 0:
            self.times -= 1
            self._meanwhile()

    def update_entity(self, *args: Any, **kwargs: Any) -> Any:
        self._interfere()
        return self._client.update_entity(*args, **kwargs)

    def create_entity(self, *args: Any, **kwargs: Any) -> Any:
        """The other writer gets in after the create found the key taken, before it is read."""
        try:
            return self._client.create_entity(*args, **kwargs)
        except ResourceExistsError:
            self._interfere()
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def interfere(
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    meanwhile: Callable[[TenantDirectory], object],
    times: int = 1,
) -> Interfering:
    """Another writer, on its own clients, changes `table` during the CLI's next write(s)."""
    other = TenantDirectory(replace(app.storage))
    real = app.storage.table
    client = Interfering(real(table), lambda: meanwhile(other), times)
    monkeypatch.setattr(app.storage, "table", lambda name: client if name == table else real(name))
    return client


def run(app: App, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = admin.main(list(argv), app=app)
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else None, captured.err


def test_webhook_set_while_the_secret_is_rotated_keeps_both_changes(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    client = interfere(app, monkeypatch, "tenants",
                       lambda other: other.rotate_webhook_secret(account.tenant_id))  # fmt: skip
    code, shown, _ = run(app, capsys, "webhook-set", account.tenant_id, "https://hooks.example/a")
    assert client.times == 0  # the race happened
    assert code == 0
    assert shown["webhookUrl"] == "https://hooks.example/a"
    assert len(shown["webhookSecrets"]) == 2  # the other writer's rotation was not lost


def test_rotate_secret_dropping_the_previous_while_the_webhook_is_set_keeps_both_changes(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    before = app.directory.require_tenant(account.tenant_id).webhook_secrets
    interfere(app, monkeypatch, "tenants",
              lambda other: other.set_webhook(account.tenant_id, "https://hooks.example/b"))  # fmt: skip
    code, shown, _ = run(app, capsys, "webhook-rotate-secret", account.tenant_id, "--drop-previous")
    assert code == 0
    assert shown["webhookUrl"] == "https://hooks.example/b"
    assert len(shown["webhookSecrets"]) == 1 and shown["webhookSecrets"][0] not in before


def test_user_grant_while_another_grant_is_written_keeps_both(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    second, third = make_account(app), make_account(app)
    interfere(app, monkeypatch, "users",
              lambda other: other.grant(account.email, third.tenant_id))  # fmt: skip
    code, user, _ = run(app, capsys, "user-grant", account.email, second.tenant_id)
    assert code == 0
    assert set(user["tenantIds"]) == {account.tenant_id, second.tenant_id, third.tenant_id}


def test_number_provision_while_its_other_owner_releases_it_takes_the_number(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    previous = make_account(app)
    number = unique_number()
    app.directory.provision_number(previous.tenant_id, number)
    interfere(app, monkeypatch, "numbers",
              lambda other: other.release_number(previous.tenant_id, number))  # fmt: skip
    code, shown, err = run(
        app, capsys, "number-provision", account.tenant_id, number, "--carrier", "sandbox"
    )
    assert code == 0, err
    assert number in shown["numbers"]
    assert app.directory.number_owner(number) == account.tenant_id


def test_a_cli_update_that_keeps_losing_the_race_exits_1_with_a_clear_error_and_no_trace(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    interfere(app, monkeypatch, "tenants",
              lambda other: other.rotate_webhook_secret(account.tenant_id), times=100)  # fmt: skip
    code, _, err = run(app, capsys, "webhook-rotate-secret", account.tenant_id)
    assert code == 1
    assert err.startswith("error:") and "changed meanwhile" in err
    assert "Traceback" not in err


def test_user_set_password_while_the_user_is_granted_a_tenant_keeps_both(
    app: App, account: TenantAccount, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    other_tenant = make_account(app).tenant_id
    interfere(app, monkeypatch, "users",
              lambda other: other.grant(account.email, other_tenant))  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("a new password\n"))
    code, _, _ = run(app, capsys, "user-set-password", account.email, "--password-stdin")
    assert code == 0
    user = app.directory.get_user(account.email)
    assert user is not None and other_tenant in user.tenant_ids
