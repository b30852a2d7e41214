"""Fault tests run on their OWN Azurite (fixed free ports, data on disk under tmp_path so it
survives a restart) and their own App, installed for the functions that the session's local host
serves; the session app comes back afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from shared.app import App, install
from shared.settings import Settings
from tests.conftest import TenantAccount, make_account
from tests.webhook_peers import CARRIER_SECRET
from tools import azurite


@dataclass
class Storage:
    """An Azurite that tests stop and start again with its data kept."""

    ports: tuple[int, int, int]
    location: Path
    process: azurite.Azurite | None = None

    def start(self) -> None:
        self.process = azurite.start(ports=self.ports, location=self.location)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    @property
    def connection_string(self) -> str:
        return azurite.connection_string(*self.ports)


@pytest.fixture(scope="module")
def own_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    ports = (azurite.free_port(), azurite.free_port(), azurite.free_port())
    storage = Storage(ports, tmp_path_factory.mktemp("azurite"))
    storage.start()
    yield storage
    storage.stop()


@pytest.fixture
def storage(own_storage: Storage) -> Iterator[Storage]:
    """Running at the start of each test, and again afterwards whatever the test did."""
    if own_storage.process is None:
        own_storage.start()
    yield own_storage
    if own_storage.process is None:
        own_storage.start()


@pytest.fixture(scope="module")
def fault_settings(own_storage: Storage) -> Settings:
    return Settings(
        media_storage_connection_string=own_storage.connection_string,
        outbound_allow_loopback=True,
        carrier_webhook_secret=SecretStr(CARRIER_SECRET),
        inbound_requeue_after_seconds=1,
        delivery_retry_seconds=(1, 1, 1),
    )


@pytest.fixture
def fault_app(app: App, base_url: str, fault_settings: Settings, storage: Storage) -> Iterator[App]:
    """A fresh App on the own Azurite, served by the session's local host for the test."""
    own = App.build(fault_settings)
    install(own)
    yield own
    install(app)


@pytest.fixture
def fault_account(fault_app: App) -> TenantAccount:
    return make_account(fault_app)


def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started
