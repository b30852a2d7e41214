"""Shared fixtures: one in-memory Azurite on free ports per test session, a real App on it,
fresh tenants per test, and the local host serving over real HTTP."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pytest

from shared import auth as auth_module
from shared.app import App, install
from shared.passwords import verify_password
from shared.settings import Settings
from tools import azurite
from tools.localhost import LocalHost, TriggerRunner, make_server

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def storage_emulator() -> Iterator[azurite.Azurite]:
    emulator = azurite.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def settings(storage_emulator: azurite.Azurite) -> Settings:
    return Settings(
        media_storage_connection_string=storage_emulator.connection_string,
        outbound_allow_loopback=True,
        # Seconds, not minutes: tests watch retries and holds happen.
        delivery_retry_seconds=(1, 1, 1),
        media_hold_seconds=1,
        media_hold_max_attempts=30,
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[App]:
    application = App.build(settings)
    install(application)
    yield application
    install(None)


def unique_number() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]


@dataclass
class TenantAccount:
    tenant_id: str
    email: str
    password: str
    number: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.email, self.password)

    def upload_json(self, content: bytes | list[int], /, **overrides: Any) -> dict[str, Any]:
        """The guide's upload body for this account: base64 for bytes, as given for a list; any
        field (even `data`) can be overridden."""
        fields: dict[str, Any] = {
            "phoneNumber": self.number,
            "fileName": "product-image.jpg",
            "contentType": "image/jpeg",
            "data": base64.b64encode(content).decode() if isinstance(content, bytes) else content,
            "tenantId": self.tenant_id,
        }
        fields.update(overrides)
        return fields

    @property
    def authorization(self) -> str:
        token = base64.b64encode(f"{self.email}:{self.password}".encode()).decode()
        return f"Basic {token}"


def make_account(app: App) -> TenantAccount:
    tenant = app.directory.create_tenant(f"test-{uuid.uuid4().hex[:8]}")
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    app.directory.create_user(email, PASSWORD)
    app.directory.grant(email, tenant.id)
    number = unique_number()
    app.directory.provision_number(tenant.id, number)
    return TenantAccount(tenant.id, email, PASSWORD, number)


@pytest.fixture
def account(app: App) -> TenantAccount:
    return make_account(app)


@pytest.fixture
def other_account(app: App) -> TenantAccount:
    return make_account(app)


def http_request(
    method: str,
    path: str,
    *,
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> func.HttpRequest:
    data = body.encode() if isinstance(body, str) else body
    return func.HttpRequest(
        method=method,
        url=f"http://localhost:7071{path}",
        headers=headers or {},
        params=params or {},
        route_params=route_params or {},
        body=data,
    )


@pytest.fixture(scope="session")
def local_host() -> LocalHost:
    return LocalHost()


@pytest.fixture(scope="session")
def base_url(app: App, local_host: LocalHost) -> Iterator[str]:
    """The local host over real HTTP, with its queue and blob triggers running."""
    server = make_server(local_host, azurite.free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    triggers = TriggerRunner(local_host, app.storage, poll_seconds=0.1)
    triggers.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    triggers.stop()
    server.shutdown()
    server.server_close()


def eventually(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll until `predicate()` is truthy; return its value, or fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@contextmanager
def app_with(app: App, **changes: Any) -> Iterator[App]:
    """The functions (and the local host's triggers) run on an app with changed settings and the
    same storage for the duration; the session app comes back afterwards."""
    changed = App.build(Settings.model_validate({**app.settings.model_dump(), **changes}))
    install(changed)
    try:
        yield changed
    finally:
        install(app)


class FakeClock:
    """A monotonic clock that moves only when a test says so (`clock.now += 61`)."""

    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Records each full (argon2) verification the authenticator performs."""
    calls: list[str | None] = []

    def counting(stored: str | None, password: str) -> bool:
        calls.append(stored)
        return verify_password(stored, password)

    monkeypatch.setattr(auth_module, "verify_password", counting)
    return calls
