"""Tenants, users and numbers on real Table Storage (Azurite)."""

import pytest

from shared.app import App
from shared.errors import Conflict, NotFound, ValidationFailed
from tests.conftest import TenantAccount, unique_number


def test_creating_an_existing_tenant_is_idempotent(app: App) -> None:
    first = app.directory.create_tenant("Acme", "11111111-2222-3333-4444-555555555555")
    again = app.directory.create_tenant("Other name", "11111111-2222-3333-4444-555555555555")
    assert again == first


def test_a_number_belongs_to_one_tenant(
    app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    app.directory.provision_number(account.tenant_id, account.number)  # same tenant: idempotent
    with pytest.raises(Conflict):
        app.directory.provision_number(other_account.tenant_id, account.number)
    assert app.directory.number_owner(account.number) == account.tenant_id


def test_released_number_can_be_provisioned_elsewhere(
    app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    app.directory.release_number(account.tenant_id, account.number)
    assert app.directory.tenant_numbers(account.tenant_id) == []
    app.directory.provision_number(other_account.tenant_id, account.number)
    assert account.number in app.directory.tenant_numbers(other_account.tenant_id)


def test_releasing_someone_elses_number_is_not_found(
    app: App, account: TenantAccount, other_account: TenantAccount
) -> None:
    with pytest.raises(NotFound):
        app.directory.release_number(other_account.tenant_id, account.number)


def test_invalid_number_and_unknown_tenant_are_rejected(app: App, account: TenantAccount) -> None:
    with pytest.raises(ValidationFailed):
        app.directory.provision_number(account.tenant_id, "555-1234")
    with pytest.raises(NotFound):
        app.directory.provision_number("99999999-9999-9999-9999-999999999999", unique_number())


def test_grant_and_revoke(app: App, account: TenantAccount, other_account: TenantAccount) -> None:
    user = app.directory.grant(account.email, other_account.tenant_id)
    assert user.tenant_ids == {account.tenant_id, other_account.tenant_id}
    user = app.directory.revoke(account.email, other_account.tenant_id)
    assert user.tenant_ids == {account.tenant_id}


def test_duplicate_user_is_a_conflict(app: App, account: TenantAccount) -> None:
    with pytest.raises(Conflict):
        app.directory.create_user(account.email.upper(), "another password")


def test_rotating_the_webhook_secret_keeps_the_previous_one_signing(
    app: App, account: TenantAccount
) -> None:
    before = app.directory.require_tenant(account.tenant_id).webhook_secrets
    after = app.directory.rotate_webhook_secret(account.tenant_id).webhook_secrets
    assert len(after) == 2 and after[1] == before[0] and after[0].startswith("whsec_")
    dropped = app.directory.rotate_webhook_secret(account.tenant_id, keep_previous=False)
    assert len(dropped.webhook_secrets) == 1


def test_password_is_stored_only_as_an_argon2id_hash(app: App, account: TenantAccount) -> None:
    user = app.directory.get_user(account.email)
    assert user is not None
    assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert account.password not in user.password_hash
