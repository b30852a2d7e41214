"""Basic authentication against stored users, including the verification cache."""

import pytest

from shared.app import App
from shared.auth import Authenticator
from shared.errors import Forbidden, Unauthorized
from tests.conftest import FakeClock, TenantAccount


def test_valid_credentials_give_the_users_tenants(app: App, account: TenantAccount) -> None:
    principal = Authenticator(app.directory, app.auth.throttle).authenticate(account.authorization)
    assert principal.tenant_ids == {account.tenant_id}
    principal.require_tenant(account.tenant_id)
    with pytest.raises(Forbidden):
        principal.require_tenant("00000000-0000-0000-0000-000000000000")


def test_wrong_password_and_unknown_user_both_pay_one_full_verification(
    app: App, account: TenantAccount, verifications: list[str | None]
) -> None:
    authenticator = Authenticator(app.directory, app.auth.throttle)
    wrong = TenantAccount(account.tenant_id, account.email, "wrong password", account.number)
    unknown = TenantAccount(
        account.tenant_id, "nobody@example.com", account.password, account.number
    )
    for creds in (wrong, unknown):
        with pytest.raises(Unauthorized):
            authenticator.authenticate(creds.authorization)
    assert len(verifications) == 2
    assert verifications[1] is None  # the unknown user still ran argon2 against the dummy hash


def test_successful_verification_is_cached_until_it_expires(
    app: App, account: TenantAccount, verifications: list[str | None]
) -> None:
    clock = FakeClock()
    authenticator = Authenticator(app.directory, app.auth.throttle, cache_seconds=60, clock=clock)
    for _ in range(3):
        authenticator.authenticate(account.authorization)
    assert len(verifications) == 1
    clock.now += 61
    authenticator.authenticate(account.authorization)
    assert len(verifications) == 2


def test_a_cached_login_never_admits_a_wrong_password(
    app: App, account: TenantAccount, verifications: list[str | None]
) -> None:
    authenticator = Authenticator(app.directory, app.auth.throttle)
    authenticator.authenticate(account.authorization)
    wrong = TenantAccount(account.tenant_id, account.email, account.password + "x", account.number)
    with pytest.raises(Unauthorized):
        authenticator.authenticate(wrong.authorization)


def test_changing_the_password_invalidates_the_cache(
    app: App, account: TenantAccount, verifications: list[str | None]
) -> None:
    authenticator = Authenticator(app.directory, app.auth.throttle)
    authenticator.authenticate(account.authorization)
    app.directory.set_password(account.email, "a brand new password")
    with pytest.raises(Unauthorized):
        authenticator.authenticate(account.authorization)
    renewed = TenantAccount(
        account.tenant_id, account.email, "a brand new password", account.number
    )
    assert authenticator.authenticate(renewed.authorization).email == account.email
