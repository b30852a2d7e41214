"""Failed-login throttling (shared.login_throttle): per (user, address), per address and a
looser per user limit that addresses the user logged in from are exempt from; 429 with
Retry-After; every limit drains by itself; one budget for all instances, kept in Table Storage."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import get_message
from shared.app import App, install
from shared.auth import Authenticator, client_address
from shared.errors import LoginThrottled, StorageUnavailable, Unauthorized
from shared.login_throttle import LoginThrottle, ThrottleRecords, ThrottleRow, ThrottleTable
from shared.settings import Settings
from shared.storage import Storage
from tests.conftest import FakeClock, TenantAccount, http_request, make_account
from tests.context import invocation_context
from tests.security.conftest import expect
from tools import azurite


def header(email: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def records(app: App) -> ThrottleTable:
    """A table of its own, so addresses reused between tests start with empty buckets."""
    return ThrottleTable(app.storage, f"throttle{uuid.uuid4().hex[:12]}")


@pytest.fixture
def auth(app: App, clock: FakeClock, records: ThrottleTable) -> Authenticator:
    throttle = LoginThrottle(
        records, per_user_address=3, per_address=5, per_user=8, window_seconds=60, clock=clock
    )
    return Authenticator(app.directory, throttle, cache_seconds=0, clock=clock)


def fail(auth: Authenticator, email: str, client: str | None, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Unauthorized):
            auth.authenticate(header(email, "wrong password"), client)


def test_failures_from_one_address_throttle_that_user_there_but_not_elsewhere(
    auth: Authenticator, account: TenantAccount
) -> None:
    fail(auth, account.email, "203.0.113.1", 3)
    with pytest.raises(LoginThrottled) as throttled:
        auth.authenticate(account.authorization, "203.0.113.1")  # even the right password
    assert throttled.value.status == 429 and throttled.value.code == "too_many_login_failures"
    assert throttled.value.headers["Retry-After"] == "20"  # one try per window/limit
    assert auth.authenticate(account.authorization, "198.51.100.7").email == account.email


def test_throttle_drains_by_itself_and_a_success_clears_the_pair(
    auth: Authenticator, account: TenantAccount, clock: FakeClock
) -> None:
    fail(auth, account.email, "203.0.113.2", 3)
    with pytest.raises(LoginThrottled):
        auth.authenticate(account.authorization, "203.0.113.2")
    clock.now += 20
    assert auth.authenticate(account.authorization, "203.0.113.2").email == account.email
    fail(auth, account.email, "203.0.113.2", 2)  # the success emptied the pair's bucket
    auth.authenticate(account.authorization, "203.0.113.2")


def test_one_address_guessing_many_users_is_throttled_for_every_user(
    app: App, auth: Authenticator
) -> None:
    for n in range(5):
        fail(auth, f"victim{n}@example.com", "203.0.113.3", 1)
    fresh = make_account(app)
    with pytest.raises(LoginThrottled):
        auth.authenticate(fresh.authorization, "203.0.113.3")
    assert auth.authenticate(fresh.authorization, "203.0.113.4").email == fresh.email


def test_guessing_from_many_addresses_cannot_lock_the_owner_out_of_a_known_address(
    auth: Authenticator, account: TenantAccount
) -> None:
    auth.authenticate(account.authorization, "192.0.2.10")  # the owner's usual address
    for n in range(8):
        fail(auth, account.email, f"198.51.100.{n}", 1)
    with pytest.raises(LoginThrottled):
        auth.authenticate(account.authorization, "198.51.100.200")  # a new address: throttled
    assert auth.authenticate(account.authorization, "192.0.2.10").email == account.email


def test_a_burst_of_parallel_guesses_gets_no_more_tries_than_the_limit(
    auth: Authenticator, account: TenantAccount
) -> None:
    def guess(_: int) -> str:
        try:
            auth.authenticate(header(account.email, "wrong password"), "203.0.113.6")
        except (Unauthorized, LoginThrottled) as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(guess, range(30)))
    assert outcomes.count("unauthorized") == 3
    assert outcomes.count("too_many_login_failures") == 27


def test_unknown_users_are_throttled_like_real_ones(auth: Authenticator) -> None:
    fail(auth, "nobody@example.com", "203.0.113.5", 3)
    with pytest.raises(LoginThrottled):
        auth.authenticate(header("nobody@example.com", "x"), "203.0.113.5")


def test_without_an_address_only_the_per_user_limit_applies(
    auth: Authenticator, account: TenantAccount
) -> None:
    fail(auth, account.email, None, 7)
    assert auth.authenticate(account.authorization, None).email == account.email
    fail(auth, account.email, None, 1)
    with pytest.raises(LoginThrottled):
        auth.authenticate(account.authorization, None)


@pytest.mark.parametrize(
    ("forwarded", "address"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("203.0.113.9:4711", "203.0.113.9"),  # App Service's ip:port
        ("10.0.0.1, 203.0.113.9", "203.0.113.9"),  # the hop the front end appended
        ("198.51.100.1, 203.0.113.9:4711", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("203.0.113.1, [2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("203.0.113.9, not-an-address", None),  # never falls back to a client-written hop
        ("not-an-address", None),
        ("", None),
    ],
)
def test_client_address_is_the_last_forwarded_hop(forwarded: str, address: str | None) -> None:
    assert client_address({"x-forwarded-for": forwarded}) == address


def test_forged_forwarded_hops_cannot_reset_the_throttle(
    auth: Authenticator, account: TenantAccount
) -> None:
    """The client controls everything before the hop the front end appends: a new forged prefix
    on every try is still the same caller."""
    front_end_saw = "203.0.113.77:50123"
    for forged in ("198.51.100.1", "198.51.100.2, 10.1.2.3", "192.0.2.44"):
        client = client_address({"X-Forwarded-For": f"{forged}, {front_end_saw}"})
        with pytest.raises(Unauthorized):
            auth.authenticate(header(account.email, "wrong password"), client)
    for forged in ("198.51.100.9", "2001:db8::5", "garbage"):
        client = client_address({"X-Forwarded-For": f"{forged}, {front_end_saw}"})
        with pytest.raises(LoginThrottled):
            auth.authenticate(account.authorization, client)


@pytest.fixture
def throttled_host(app: App, base_url: str) -> Iterator[App]:
    test_app = App.build(app.settings)
    records = ThrottleTable(test_app.storage, f"throttle{uuid.uuid4().hex[:12]}")
    test_app.auth = Authenticator(
        test_app.directory,
        LoginThrottle(records, per_user_address=2, per_address=50, per_user=50),
    )
    install(test_app)
    yield test_app
    install(app)


@pytest.mark.e2e
def test_throttled_login_over_http_is_429_problem_with_retry_after(
    throttled_host: App, base_url: str, account: TenantAccount
) -> None:
    url = f"{base_url}/api/v1/media/{'0' * 32}"
    attacker = {"X-Forwarded-For": "203.0.113.77:50123"}
    for _ in range(2):
        wrong = requests.get(url, auth=(account.email, "wrong"), headers=attacker, timeout=10)
        expect(wrong, 401, "unauthorized")
    throttled = requests.get(url, auth=account.auth, headers=attacker, timeout=10)
    expect(throttled, 429, "too_many_login_failures")
    assert int(throttled.headers["Retry-After"]) >= 1
    # The local host appends the connection's address like the front end does: a client that
    # claims another address is still the same client.
    forged = requests.get(
        url, auth=account.auth, headers={"X-Forwarded-For": "198.51.100.1"}, timeout=10
    )
    expect(forged, 429, "too_many_login_failures")


def test_forged_forwarded_hops_through_a_function_still_meet_the_throttle(
    throttled_host: App, account: TenantAccount
) -> None:
    """The same through a function's HTTP boundary: the key comes from the request headers."""

    def get(password: str, forged: str) -> int:
        request = http_request(
            "GET", f"/api/v1/messages/{'0' * 32}", route_params={"messageId": "0" * 32},
            headers={"Authorization": header(account.email, password),
                     "X-Forwarded-For": f"{forged}, 203.0.113.78:40000"},
        )  # fmt: skip
        return int(get_message.main(request, invocation_context()).status_code)

    assert [get("wrong", f"198.51.100.{i}") for i in range(2)] == [401, 401]
    assert get(account.password, "198.51.100.200") == 429


def test_two_instances_share_one_budget(app: App, account: TenantAccount) -> None:
    """Two Apps on the same storage are two Azure instances: guesses spread over both meet the
    one limit, where each used to allow it on its own."""
    settings = Settings.model_validate(
        {**app.settings.model_dump(), "login_failures_per_user_address": 4}
    )
    first, second = App.build(settings), App.build(settings)
    client = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    for instance in (first, second, first, second):
        with pytest.raises(Unauthorized):
            instance.auth.authenticate(header(account.email, "wrong password"), client)
    for instance in (first, second):
        with pytest.raises(LoginThrottled):
            instance.auth.authenticate(account.authorization, client)


def test_emails_that_are_not_table_keys_are_throttled_too(auth: Authenticator) -> None:
    """Anything may arrive as a Basic user name; the rows are keyed by a hash of it."""
    odd = "a/b\\c#d?e\u0001 f@example.com"
    fail(auth, odd, "203.0.113.8", 3)
    with pytest.raises(LoginThrottled):
        auth.authenticate(header(odd, "x"), "203.0.113.8")


@pytest.fixture
def unreachable_throttle(app: App) -> LoginThrottle:
    ports = (azurite.free_port(), azurite.free_port(), azurite.free_port())
    nowhere = Settings(media_storage_connection_string=azurite.connection_string(*ports))
    return LoginThrottle(ThrottleTable(Storage.from_settings(nowhere)))


def test_a_storage_outage_fails_closed_with_503_and_checks_no_password(
    app: App, account: TenantAccount, unreachable_throttle: LoginThrottle,
    verifications: list[str | None],
) -> None:  # fmt: skip
    """Without the throttle's state nobody gets in and no guess is evaluated: right and wrong
    passwords alike answer 503 Retry-After, as any storage outage does."""
    auth = Authenticator(app.directory, unreachable_throttle)
    for password in (account.password, "wrong password"):
        with pytest.raises(StorageUnavailable):
            auth.authenticate(header(account.email, password), "203.0.113.9")
    assert verifications == []
    test_app = App.build(app.settings)
    test_app.auth = auth
    install(test_app)
    try:
        request = http_request(
            "GET", f"/api/v1/messages/{'0' * 32}", route_params={"messageId": "0" * 32},
            headers={"Authorization": header(account.email, "wrong password"),
                     "X-Forwarded-For": "203.0.113.9"},
        )  # fmt: skip
        response = get_message.main(request, invocation_context())
    finally:
        install(app)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert json.loads(response.get_body())["code"] == "storage_unavailable"


def test_a_failure_that_loses_a_write_race_is_counted_after_reading_again(
    records: ThrottleTable, clock: FakeClock
) -> None:
    """Another instance records a failure between this one's read and write: the etag condition
    fails (412), this one reads again, and both failures count."""

    def throttle(rows: ThrottleRecords) -> LoginThrottle:
        return LoginThrottle(rows, per_user_address=3, per_address=50, per_user=50, clock=clock)

    email, client = f"victim-{uuid.uuid4().hex[:8]}@example.com", "203.0.113.10"
    other = throttle(records)

    class OvertakenOnce:
        overtaken = False

        def read(self, key: str) -> ThrottleRow:
            return records.read(key)

        def write(self, key: str, row: ThrottleRow) -> bool:
            if not self.overtaken:
                self.overtaken = True
                other.failed(other.check(email, client))
            return records.write(key, row)

    this = throttle(OvertakenOnce())
    this.failed(this.check(email, client))
    other.failed(other.check(email, client))  # the third failure
    with pytest.raises(LoginThrottled):
        this.check(email, client)
