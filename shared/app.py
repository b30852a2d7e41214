"""The application's long-lived objects, built once per process from the settings.

Function shims call `current()`; tests and the local host build an `App` with explicit settings
and `install` it, so nothing reads the environment behind a test's back.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import partial

import azure.functions as func

from shared.auth import Authenticator
from shared.carriers import callbacks, index
from shared.carriers.callbacks import CarrierStatuses, SeenSignature, SignatureReplays
from shared.carriers.index import ProviderIndex, ProviderMessage
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
from shared.media.sessions import UploadSessions
from shared.media.staging import Staging
from shared.media.store import MediaStore
from shared.messages import gateway, store
from shared.messages.gateway import SandboxDelivery
from shared.messages.media_urls import MediaUrlChecker
from shared.messages.service import DELIVERY_QUEUE, MessageDeliveries, Outbox
from shared.messages.status import MessageStatuses
from shared.messages.store import Message, MessageStore
from shared.outbound import AddressPolicy, OutboundClient
from shared.settings import Settings, load_settings
from shared.storage import JobQueue, Storage
from shared.tables import R, Table
from shared.telemetry import configure_telemetry
from shared.tenancy import TenantDirectory
from shared.webhooks import dead_letters, deliveries
from shared.webhooks.dead_letters import DeadLetter, DeadLetters
from shared.webhooks.deliveries import (
    WebhookDeliveries,
    WebhookDelivery,
)


@dataclass
class App:
    settings: Settings
    storage: Storage
    directory: TenantDirectory
    auth: Authenticator
    media: MediaStore
    idempotency: Idempotency[func.HttpResponse]
    outbound: OutboundClient
    ingest: Ingest
    sessions: UploadSessions
    staging: Staging
    carriers: Carriers
    messages: MessageStore
    webhooks: WebhookDeliveries
    statuses: MessageStatuses
    outbox: Outbox
    message_deliveries: MessageDeliveries
    carrier_statuses: CarrierStatuses
    inbound_records: InboundRecords
    intake: Intake
    inbound: InboundProcessor
    inbound_recovery: Recovery
    throttle_rows: ThrottleTable

    @classmethod
    def build(cls, settings: Settings, *, outbound: OutboundClient | None = None) -> App:
        """Everything, built once. `outbound` replaces the SSRF-guarded client the settings
        would give (tests: a shorter deadline)."""
        storage = Storage.from_settings(settings)
        directory = TenantDirectory(storage)
        throttle_rows = ThrottleTable(storage)
        throttle = LoginThrottle(
            throttle_rows,
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
        outbound = outbound or OutboundClient(policy)
        media = MediaStore(storage, settings)

        def table(name: str, row: type[R]) -> Table[R]:
            return Table(partial(storage.table, name), row)

        provider_index = ProviderIndex(table(index.TABLE, ProviderMessage))
        sandbox = table(gateway.SANDBOX_TABLE, SandboxDelivery)
        carriers = Carriers(settings, directory, provider_index, sandbox)
        messages = MessageStore(table(store.TABLE, Message))
        webhooks = WebhookDeliveries(
            table(deliveries.TABLE, WebhookDelivery),
            DeadLetters(table(dead_letters.TABLE, DeadLetter)),
            JobQueue(storage, settings.webhook_queue),
            directory,
            outbound,
            retry_schedule=settings.webhook_retry_schedule_seconds,
            retry_jitter=settings.webhook_retry_jitter,
        )
        statuses = MessageStatuses(messages, webhooks)
        delivery_jobs = JobQueue(storage, DELIVERY_QUEUE)
        container_url = storage.blobs.get_container_client(settings.media_container).url
        media_urls = MediaUrlChecker(
            media, outbound, container_url=container_url, max_bytes=settings.max_media_bytes
        )
        ingest = Ingest(media, settings)
        sessions = UploadSessions(storage, settings)
        records, pending = InboundRecords(storage), PendingIndex(storage)
        queue = ProcessingQueue(storage, settings.inbound_queue)
        return cls(
            settings,
            storage,
            directory,
            auth,
            media,
            Idempotency(storage, replay=replayed),
            outbound,
            ingest,
            sessions,
            Staging(storage, settings, sessions, ingest),
            carriers,
            messages,
            webhooks,
            statuses,
            Outbox(messages, directory, media_urls, carriers, delivery_jobs),
            # Each send goes out through the carrier of its `from` number.
            MessageDeliveries(messages, statuses, carriers, media, delivery_jobs, settings),
            CarrierStatuses(
                provider_index,
                messages,
                statuses,
                SignatureReplays(table(callbacks.REPLAYS_TABLE, SeenSignature)),
            ),
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
            throttle_rows,
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
