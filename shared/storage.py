"""Clients for the storage account that holds media, records and queues (Azurite locally).

Retries are tuned for the HTTP path: a request must answer well inside Azure's 230 s limit, so the
SDK gives up after a few short tries and the caller maps the failure to a 503.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError
from azure.storage.blob import BlobServiceClient, ContainerClient, LinearRetry
from azure.storage.queue import (
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from shared.errors import (
    AlreadyExists,
    ChangedMeanwhile,
    ServiceError,
    StorageRejected,
    StorageUnavailable,
)
from shared.settings import Settings

_TIMEOUTS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 30}
# Tables use azure-core's retry policy; blobs and queues have the storage SDKs' own, whose default
# (15 s initial backoff) would hold a failing request for ~40 s. Here: two retries 0.5 s apart.
TABLE_RETRY: dict[str, Any] = {
    "retry_total": 2, "retry_backoff_factor": 0.3, "retry_backoff_max": 2, **_TIMEOUTS
}  # fmt: skip


def _storage_retry() -> dict[str, Any]:
    # Seconds are annotated as int in the SDK but used as floats.
    policy = LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=2)  # type: ignore[arg-type]
    return {"retry_policy": policy, **_TIMEOUTS}


# Queue, blob and timer triggers call storage beside the HTTP requests (the runtime runs up to
# batchSize + newBatchThreshold = 24 messages of a queue function at once).
TRIGGER_CONNECTIONS = 32


def _transport(settings: Settings) -> dict[str, Any]:
    """One HTTP transport per service client, keeping as many connections as requests and
    triggers can use at once: a smaller pool (urllib3's default is 10) opens and throws away a
    connection per call beyond it ("Connection pool is full")."""
    # Imported here, when the clients are built (as the SDKs import their default transport).
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    class PooledAdapter(HTTPAdapter):
        """requests' adapter as azure-core sets it up (32 KiB socket reads), with a pool size."""

        def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
            super().init_poolmanager(*args, blocksize=32768, **pool_kwargs)

    size = settings.max_concurrent_requests + TRIGGER_CONNECTIONS
    # No retries in urllib3: the SDK's pipeline retries (as azure-core's own adapter is set up).
    adapter = PooledAdapter(
        pool_maxsize=size, max_retries=Retry(total=False, redirect=False, raise_on_status=False)
    )
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return {"transport": RequestsTransport(session=session, session_owner=True)}


log = logging.getLogger(__name__)


@contextmanager
def storage_errors() -> Iterator[None]:
    """The one translation of the storage SDKs' exceptions (tables, blobs, queues) into the
    project's hierarchy, like `process_storage_error` inside the SDK:

        ServiceRequestError / ServiceResponseError / 5xx / 429  -> StorageUnavailable (503)
        a create whose key is taken (409)                       -> AlreadyExists (409)
        a condition lost (412) or the target vanished (404)     -> ChangedMeanwhile (409)
        any other 4xx (a request the service refused)           -> StorageRejected (500)

    A plain read of something missing is the caller's to expect: catch `ChangedMeanwhile` there
    or use an API that answers None (`shared.tables.Table.get`).
    """
    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StorageUnavailable() from exc
    except ResourceExistsError as exc:
        raise AlreadyExists() from exc
    except (ResourceModifiedError, ResourceNotFoundError) as exc:
        raise ChangedMeanwhile() from exc
    except TableTransactionError as exc:
        if exc.status_code == 409:
            raise AlreadyExists() from exc
        if exc.status_code in (404, 412):
            raise ChangedMeanwhile() from exc
        raise _by_status(exc) from exc
    except HttpResponseError as exc:
        raise _by_status(exc) from exc


def _by_status(exc: HttpResponseError) -> ServiceError:
    if exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429:
        return StorageUnavailable()
    log.error("storage refused a request: %s", exc.status_code, exc_info=exc)
    return StorageRejected(f"Storage refused a request ({exc.status_code}).")


def job_fields(body: bytes, *keys: str) -> tuple[str, ...] | None:
    """The named fields of a JSON queue message, as strings; None (and a log line) when it is
    unreadable: such a message can never succeed, so it is dropped rather than retried."""
    try:
        job = json.loads(body)
        return tuple(str(job[key]) for key in keys)
    except (ValueError, KeyError, TypeError):
        log.error("dropping an unreadable queue message (expected fields %s)", ", ".join(keys))
        return None


@dataclass
class Storage:
    blobs: BlobServiceClient
    tables: TableServiceClient
    queues: QueueServiceClient
    account_name: str
    account_key: str | None
    is_emulator: bool
    _ensured: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        if settings.media_storage_connection_string is not None:
            from shared.settings import parse_connection_string

            conn = settings.media_storage_connection_string.get_secret_value()
            parts = parse_connection_string(conn)
            return cls(
                blobs=BlobServiceClient.from_connection_string(
                    conn, **_storage_retry(), **_transport(settings)
                ),
                tables=TableServiceClient.from_connection_string(
                    conn, **TABLE_RETRY, **_transport(settings)
                ),
                queues=QueueServiceClient.from_connection_string(
                    conn, **_storage_retry(), **_transport(settings)
                ),
                account_name=parts.get("AccountName", "devstoreaccount1"),
                account_key=parts.get("AccountKey"),
                is_emulator=settings.storage_is_emulator,
            )
        return cls._from_identity(settings)

    @classmethod
    def _from_identity(cls, settings: Settings) -> Storage:
        from azure.identity import DefaultAzureCredential

        name = settings.media_storage_account_name
        credential = DefaultAzureCredential(
            managed_identity_client_id=settings.managed_identity_client_id
        )
        key = settings.media_storage_account_key
        return cls(
            blobs=BlobServiceClient(
                settings.media_storage_blob_endpoint or f"https://{name}.blob.core.windows.net",
                credential=credential,
                **_storage_retry(),
                **_transport(settings),
            ),
            tables=TableServiceClient(
                f"https://{name}.table.core.windows.net",
                credential=credential,
                **TABLE_RETRY,
                **_transport(settings),
            ),
            queues=QueueServiceClient(
                f"https://{name}.queue.core.windows.net",
                credential=credential,
                **_storage_retry(),
                **_transport(settings),
            ),
            account_name=name or "",
            account_key=key.get_secret_value() if key else None,
            is_emulator=False,
        )

    @property
    def blob_origin(self) -> str:
        """scheme://host:port of the blob endpoint (the emulator's serves plain http)."""
        parts = urlsplit(self.blobs.primary_endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    def table(self, name: str) -> TableClient:
        self._ensure(f"table:{name}", lambda: self.tables.create_table(name))
        return self.tables.get_table_client(name)

    def container(self, name: str) -> ContainerClient:
        client = self.blobs.get_container_client(name)
        self._ensure(f"container:{name}", client.create_container)
        return client

    def queue(self, name: str) -> QueueClient:
        # Base64 text both ways, as host.json's `messageEncoding` tells the Functions runtime.
        client = self.queues.get_queue_client(
            name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )
        self._ensure(f"queue:{name}", client.create_queue)
        return client

    def _ensure(self, key: str, create: Any) -> None:
        """Create a resource once per process; an existing one is fine (idempotent)."""
        if key in self._ensured:
            return
        with self._lock:
            if key in self._ensured:
                return
            with contextlib.suppress(ResourceExistsError):
                create()
            self._ensured.add(key)


class JobQueue:
    """One queue of JSON jobs, reached (and created) on first use, so the composition root
    builds its workers without a network call; storage failures arrive translated."""

    def __init__(self, storage: Storage, name: str) -> None:
        self._storage = storage
        self.name = name

    def put(self, job: Mapping[str, Any], *, delay: int = 0) -> None:
        """Queue `job`, visible after `delay` seconds (at once for 0)."""
        with storage_errors():
            self._storage.queue(self.name).send_message(
                json.dumps(job), visibility_timeout=delay or None
            )
