"""The local host as its own process (`python -m tools.localhost`): killed with SIGKILL, it starts
again on the same port and storage."""

from __future__ import annotations

import signal

from shared.app import App
from tests.host_process import start_host, wait_healthy
from tools.azurite import free_port


def test_host_killed_with_sigkill_restarts_on_the_same_port_and_storage(app: App) -> None:
    port = free_port()
    connection = app.settings.media_storage_connection_string
    assert connection is not None
    first = start_host(port, connection.get_secret_value())
    try:
        wait_healthy(port, first)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        second = start_host(port, connection.get_secret_value())
        try:
            wait_healthy(port, second)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=20) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
