"""The application's long-lived objects, built once per process from the settings.

Function shims call `current()`; tests and the local host build an `App` with explicit settings
and `install` it, so nothing reads the environment behind a test's back.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from shared.auth import Authenticator
from shared.carriers.routing import Carriers
from shared.http import replayed
from shared.idempotency import Idempotency
from shared.inbound.intake import Intake
from shared.inbound.pending import PendingIndex
from shared.inbound.processing import InboundProcessor
from shared.inbound.queue import ProcessingQueue
from shared.inbound.records import InboundRecords
from shared.inbound.recovery import Recovery
from shared.login_throttle import LoginThrottle, ThrottleTable
from shared.media.ingest import Ingest
from shared.media.store import MediaStore
from shared.messages.gateway import CarrierGateway
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
    idempotency: Idempotency[func.HttpResponse]
    outbound: OutboundClient
    gateway: CarrierGateway
    ingest: Ingest
    carriers: Carriers
    inbound_records: InboundRecords
    intake: Intake
    inbound: InboundProcessor
    inbound_recovery: Recovery

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
        carriers = Carriers(settings, storage, directory)
        ingest = Ingest(media, settings)
        records, pending = InboundRecords(storage), PendingIndex(storage)
        queue = ProcessingQueue(storage, settings.inbound_queue)
        webhooks = _AppWebhooks()
        app = cls(
            settings,
            storage,
            directory,
            auth,
            media,
            Idempotency(storage, replay=replayed),
            outbound,
            carriers,  # routes each send by the carrier of its `from` number
            ingest,
            carriers,
            records,
            Intake(
                records,
                pending,
                queue,
                requeue_after_seconds=settings.inbound_requeue_after_seconds,
            ),
            InboundProcessor(
                records,
                pending,
                outbound,
                ingest,
                media,
                webhooks,
                media_credentials=carriers.media_credentials,
                max_media_bytes=settings.max_media_bytes,
            ),
            Recovery(
                records,
                pending,
                queue,
                recover_after_seconds=settings.inbound_recover_after_seconds,
            ),
        )
        webhooks.app = app
        return app


class _AppWebhooks:
    """The customer webhooks as inbound processing uses them, over shared.webhooks.deliveries,
    whose functions still take the whole `App` (and import this module, hence the late import)."""

    app: App

    def webhook_id(self, event_type: str, idempotency_key: str) -> str:
        from shared.webhooks.deliveries import webhook_id_for

        return webhook_id_for(f"{event_type}:{idempotency_key}")

    def enqueue(
        self, tenant_id: str, event_type: str, payload: Mapping[str, Any], idempotency_key: str
    ) -> None:
        from shared.webhooks.deliveries import WebhookTarget, enqueue_webhook

        enqueue_webhook(
            self.app, WebhookTarget(tenant_id), event_type, payload,
            idempotency_key=idempotency_key,
        )  # fmt: skip


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
