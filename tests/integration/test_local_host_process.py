"""The local host as its own process (`python -m tools.localhost`), as the chaos tests run it:
pointed at a given storage and port, killed with SIGKILL, started again on the same data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from shared.app import App
from tools.azurite import ROOT, free_port


def start_host(port: int, connection_string: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MEDIA_STORAGE_CONNECTION_STRING": connection_string}
    command = [sys.executable, "-m", "tools.localhost", "--port", str(port), "--queue-lease", "2"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the host exited with {process.returncode}"
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError("the host did not answer in time")


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
