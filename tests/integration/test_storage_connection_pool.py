"""The storage clients keep as many connections as the app runs requests at once, and that figure
is the one host.json gives the Functions host."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.settings import Settings
from shared.storage import Storage
from tools.azurite import ROOT
from tools.localhost import ServerLimits


def test_host_json_concurrency_is_the_settings_default() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    cap = host["extensions"]["http"]["maxConcurrentRequests"]
    assert cap == Settings.model_fields["max_concurrent_requests"].default
    assert ServerLimits.from_host_json(ROOT).max_concurrent_requests == cap


def test_storage_calls_at_the_concurrency_cap_reuse_pooled_connections(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    cap = 40
    storage = Storage.from_settings(settings.model_copy(update={"max_concurrent_requests": cap}))
    table = storage.table(f"pool{uuid.uuid4().hex[:8]}")
    queue = storage.queue(f"pool-{uuid.uuid4().hex[:8]}")
    container = storage.container(f"pool-{uuid.uuid4().hex[:8]}")
    start = threading.Barrier(cap)

    def calls(_: int) -> None:
        start.wait(timeout=30)
        for _ in range(5):
            list(table.query_entities("PartitionKey eq 'none'"))
            queue.peek_messages()
            container.get_container_properties()

    with (
        caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"),
        ThreadPoolExecutor(max_workers=cap) as pool,
    ):
        list(pool.map(calls, range(cap)))
    full = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert full == []
