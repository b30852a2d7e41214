"""The local host as its own process (`python -m tools.localhost`), as crash tests run it: pointed
at a given storage and port, with settings as environment variables, killed with SIGKILL and
started again on the same data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tools.azurite import ROOT


def start_host(
    port: int,
    connection_string: str,
    *,
    queue_lease: float = 2,
    settings: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start the host; `settings` are app settings by name (e.g. CARRIER_GATEWAY_URL), and its
    output goes to `log` (appended, so a restarted host continues it) or nowhere."""
    env = {**os.environ, **(settings or {}), "MEDIA_STORAGE_CONNECTION_STRING": connection_string}
    command = [sys.executable, "-m", "tools.localhost", "--port", str(port),
               "--queue-lease", str(queue_lease)]  # fmt: skip
    if log is None:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    with log.open("ab") as out:  # the child has its own copy of the file
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


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
