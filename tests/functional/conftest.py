"""Fixtures of the functional suites that call the inbound functions' `main` directly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.app import App
from tests.conftest import app_with
from tests.webhook_peers import CARRIER_SECRET


@pytest.fixture
def inbound_app(app: App) -> Iterator[App]:
    """The app with the carrier secret set and queues private to the test (so the host's trigger
    runner, if running, never takes its messages) and webhook retries without delay."""
    tag = uuid.uuid4().hex[:10]
    with app_with(
        app, carrier_webhook_secret=CARRIER_SECRET, inbound_queue=f"t-in-{tag}",
        webhook_queue=f"t-wh-{tag}", webhook_retry_schedule_seconds=(0, 0),
        webhook_retry_jitter=0.0,
    ) as changed:  # fmt: skip
        yield changed
