"""The application's long-lived objects, built once per process from the settings.

Function shims call `current()`; tests and the local host build an `App` with explicit settings
and `install` it, so nothing reads the environment behind a test's back.

Each collaborator is built (and its module imported) when a function first uses it, then kept:
a function pays at cold start only for what it uses (an upload never loads the carrier gateway's
HTTP client), and nothing is imported or built at import time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from shared.auth import Authenticator
    from shared.idempotency import Idempotency
    from shared.media.ingest import Ingest
    from shared.media.sessions import UploadSessions
    from shared.media.staging import Staging
    from shared.media.store import MediaStore
    from shared.messages.gateway import CarrierGateway
    from shared.outbound import OutboundClient
    from shared.settings import Settings
    from shared.storage import Storage
    from shared.tenancy import TenantDirectory

T = TypeVar("T")


class _Built(Generic[T]):
    """An attribute built on first use, once per App even under concurrent first calls; tests
    may assign one (a store over other storage) like any attribute."""

    def __init__(self, build: Callable[[App], T]) -> None:
        self._build = build

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, app: None, owner: type) -> _Built[T]: ...
    @overload
    def __get__(self, app: App, owner: type) -> T: ...
    def __get__(self, app: App | None, owner: type) -> _Built[T] | T:
        if app is None:
            return self
        value: Any = app.__dict__.get(self._name, _MISSING)
        if value is _MISSING:
            with app._lock:
                value = app.__dict__.get(self._name, _MISSING)
                if value is _MISSING:
                    value = app.__dict__[self._name] = self._build(app)
        result: T = value
        return result

    def __set__(self, app: App, value: T) -> None:
        app.__dict__[self._name] = value


_MISSING = object()


def _storage(app: App) -> Storage:
    from shared.storage import Storage

    return Storage.from_settings(app.settings)


def _directory(app: App) -> TenantDirectory:
    from shared.tenancy import TenantDirectory

    return TenantDirectory(app.storage)


def _auth(app: App) -> Authenticator:
    from shared.auth import Authenticator
    from shared.login_throttle import LoginThrottle, ThrottleTable

    settings = app.settings
    throttle = LoginThrottle(
        ThrottleTable(app.storage),
        per_user_address=settings.login_failures_per_user_address,
        per_address=settings.login_failures_per_address,
        per_user=settings.login_failures_per_user,
        window_seconds=settings.login_throttle_window_seconds,
    )
    return Authenticator(app.directory, throttle, cache_seconds=settings.auth_cache_seconds)


def _outbound(app: App) -> OutboundClient:
    from shared.outbound import AddressPolicy, OutboundClient

    storage = app.storage
    emulator = (storage.blob_origin,) if storage.is_emulator else ()
    if app.settings.outbound_allow_loopback:
        policy = AddressPolicy.local_development(*emulator)
    else:
        policy = AddressPolicy(plain_http_origins=emulator)
    return OutboundClient(policy)


def _media(app: App) -> MediaStore:
    from shared.media.store import MediaStore

    return MediaStore(app.storage, app.settings)


def _idempotency(app: App) -> Idempotency:
    from shared.idempotency import Idempotency

    return Idempotency(app.storage)


def _gateway(app: App) -> CarrierGateway:
    from shared.messages.gateway import gateway_from_settings

    return gateway_from_settings(app.settings, app.storage)


def _ingest(app: App) -> Ingest:
    from shared.media.ingest import Ingest

    return Ingest(app.media, app.settings)


def _sessions(app: App) -> UploadSessions:
    from shared.media.sessions import UploadSessions

    return UploadSessions(app.storage, app.settings)


def _staging(app: App) -> Staging:
    from shared.media.staging import Staging

    return Staging(app.storage, app.settings, app.sessions, app.ingest)


class App:
    storage = _Built(_storage)
    directory = _Built(_directory)
    auth = _Built(_auth)
    media = _Built(_media)
    idempotency = _Built(_idempotency)
    outbound = _Built(_outbound)
    gateway = _Built(_gateway)
    ingest = _Built(_ingest)
    sessions = _Built(_sessions)
    staging = _Built(_staging)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Reentrant: building one collaborator builds those it needs.
        self._lock = threading.RLock()

    @classmethod
    def build(cls, settings: Settings) -> App:
        return cls(settings)

    def __repr__(self) -> str:
        built = sorted(k for k in self.__dict__ if not k.startswith("_") and k != "settings")
        return f"App(built={built})"


_app: App | None = None
_lock = threading.Lock()


def current() -> App:
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                from shared.settings import load_settings
                from shared.telemetry import configure_telemetry

                configure_telemetry(os.environ)
                _app = App.build(load_settings())
    return _app


def install(app: App | None) -> None:
    global _app
    _app = app
