"""The application's long-lived objects, built once per process from the settings.

Function shims call `current()`; tests and the local host build an `App` with explicit settings
and `install` it, so nothing reads the environment behind a test's back.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from shared.auth import Authenticator
from shared.idempotency import Idempotency
from shared.login_throttle import LoginThrottle, ThrottleTable
from shared.media.ingest import Ingest
from shared.media.sessions import UploadSessions
from shared.media.staging import Staging
from shared.media.store import MediaStore
from shared.messages.gateway import CarrierGateway, gateway_from_settings
from shared.outbound import AddressPolicy, OutboundClient
from shared.settings import Settings, load_settings
from shared.storage import Storage
from shared.telemetry import configure_telemetry
from shared.tenancy import TenantDirectory


@dataclass
class App:
    settings: Settings
    storage: Storage
    directory: TenantDirectory
    auth: Authenticator
    media: MediaStore
    idempotency: Idempotency
    outbound: OutboundClient
    gateway: CarrierGateway
    ingest: Ingest
    sessions: UploadSessions
    staging: Staging

    @classmethod
    def build(cls, settings: Settings) -> App:
        storage = Storage.from_settings(settings)
        directory = TenantDirectory(storage)
        throttle = LoginThrottle(
            ThrottleTable(storage),
            per_user_address=settings.login_failures_per_user_address,
            per_address=settings.login_failures_per_address,
            per_user=settings.login_failures_per_user,
            window_seconds=settings.login_throttle_window_seconds,
        )
        auth = Authenticator(directory, throttle, cache_seconds=settings.auth_cache_seconds)
        emulator = (storage.blob_origin,) if storage.is_emulator else ()
        if settings.outbound_allow_loopback:
            policy = AddressPolicy.local_development(*emulator)
        else:
            policy = AddressPolicy(plain_http_origins=emulator)
        outbound = OutboundClient(policy)
        media = MediaStore(storage, settings)
        ingest = Ingest(media, settings)
        sessions = UploadSessions(storage, settings)
        return cls(
            settings,
            storage,
            directory,
            auth,
            media,
            Idempotency(storage),
            outbound,
            gateway_from_settings(settings, storage),
            ingest,
            sessions,
            Staging(storage, settings, sessions, ingest),
        )


_app: App | None = None
_lock = threading.Lock()


def current() -> App:
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                configure_telemetry(os.environ)
                _app = App.build(load_settings())
    return _app


def install(app: App | None) -> None:
    global _app
    _app = app
