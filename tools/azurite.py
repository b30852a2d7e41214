"""Starts and stops the Azurite storage emulator installed into ./node_modules by `npm ci`.

Used by `make run` (fixed default ports, data under .azurite/) and by the test suite (free ports,
in-memory). Always bound to 127.0.0.1 with telemetry off.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"

# The well-known development account every Azure SDK and Azurite share; it is public, not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_PORTS = (10000, 10001, 10002)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    base = "http://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint={base}:{blob_port}/{DEV_ACCOUNT};"
        f"QueueEndpoint={base}:{queue_port}/{DEV_ACCOUNT};"
        f"TableEndpoint={base}:{table_port}/{DEV_ACCOUNT};"
    )


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Azurite:
    """A running Azurite process and how to reach it."""

    process: subprocess.Popen[bytes]
    ports: tuple[int, int, int]

    @property
    def connection_string(self) -> str:
        return connection_string(*self.ports)

    def stop(self) -> None:
        # SIGTERM first: Azurite saves its data on the way out. Killed outright, a persisted
        # Azurite loses the writes of its last 5 s (it saves every 5 s).
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    *,
    ports: tuple[int, int, int] | None = None,
    location: Path | None = None,
    log: Path | None = None,
    timeout: float = 30.0,
) -> Azurite:
    """Start Azurite; in memory unless `location` is given (the two cannot be combined)."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"Azurite is not installed at {AZURITE_BIN}; run `npm ci` (make does).")
    blob, queue, table = ports or (free_port(), free_port(), free_port())
    busy = [p for p in (blob, queue, table) if _port_open(p)]
    if busy:
        raise RuntimeError(f"ports {busy} are already in use; is another Azurite running?")
    args = [
        str(AZURITE_BIN),
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
        "--skipApiVersionCheck", "--disableTelemetry", "--loose",
    ]  # fmt: skip
    if location is None:
        args.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(location)]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the child
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    azurite = Azurite(process, (blob, queue, table))
    deadline = time.monotonic() + timeout
    while not all(_port_open(p) for p in azurite.ports):
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited with code {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            azurite.stop()
            raise RuntimeError("Azurite did not start listening in time")
        time.sleep(0.1)
    return azurite
