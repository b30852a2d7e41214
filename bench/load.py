"""Load check through the local host (not a test; pytest never runs it).

Run: `.venv/bin/python -m bench.load [--uploads 200] [--recipients 1000]`. Starts its own
in-memory Azurite and the local host (`python -m tools.localhost`, HTTP plus its queue and blob
triggers) as a subprocess, as `make run` does, then:

1. N concurrent uploads of mixed sizes (10 KB - 5 MB; JPEG, PNG, PDF): every one must answer 201;
   once the optimiser has settled, every URL must serve bytes whose sha256 is what was sent or,
   for media the optimiser rewrote, the record's sha256. Reports throughput, p50/p99 latency and
   the serving process's peak RSS (VmHWM).
2. A send to M recipients in requests of 100 (the recipient limit), all at once: reports the time
   until the sandbox gateway has every message `delivered`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from shared.app import App
from shared.messages.store import TABLE as MESSAGES_TABLE
from shared.settings import Settings
from tools import azurite
from tools.azurite import ROOT

KB, MB = 1024, 1024 * 1024
PASSWORD = secrets.token_urlsafe(16)  # this run only


@dataclass
class Upload:
    name: str
    content_type: str
    data: bytes


def _jpeg(target: int, rng: random.Random) -> bytes:
    side = max(16, int((target / 1.2) ** 0.5))  # noise JPEG at q95: ~1.2 bytes per pixel
    while True:
        img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=95)
        if out.tell() <= 5 * MB:
            return out.getvalue()
        side = int(side * 0.9)


def _png(target: int, rng: random.Random) -> bytes:
    side = max(16, int((target / 3.05) ** 0.5))  # noise does not compress: ~3 bytes per pixel
    while True:
        img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        out = io.BytesIO()
        img.save(out, "PNG", compress_level=1)
        if out.tell() <= 5 * MB:
            return out.getvalue()
        side = int(side * 0.95)


def _pdf(target: int, rng: random.Random) -> bytes:
    head = b"%PDF-1.4\n%" + rng.randbytes(4) + b"\n"
    tail = b"\ntrailer\n<< >>\n%%EOF\n"
    return head + b"%" + b"x" * max(0, target - len(head) - len(tail) - 1) + tail


def make_uploads(count: int, seed: int = 8) -> list[Upload]:
    rng = random.Random(seed)
    makers = [("jpg", "image/jpeg", _jpeg), ("png", "image/png", _png), ("pdf", "application/pdf", _pdf)]  # fmt: skip  # noqa: E501
    uploads = []
    for n in range(count):
        ext, content_type, make = makers[n % 3]
        target = int(10 * KB * (500 ** rng.random()))  # log-uniform 10 KB - 5 MB
        uploads.append(Upload(f"load-{n}.{ext}", content_type, make(min(target, 5 * MB), rng)))
    return uploads


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_ready(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the local host did not come up")


def run_uploads(base: str, account: dict[str, str], uploads: list[Upload]) -> dict[str, Any]:
    auth = (account["email"], PASSWORD)

    def one(upload: Upload) -> tuple[float, int, dict[str, Any]]:
        body = {
            "phoneNumber": account["number"], "fileName": upload.name,
            "contentType": upload.content_type, "tenantId": account["tenant"],
            "data": base64.b64encode(upload.data).decode(),
        }  # fmt: skip
        started = time.perf_counter()
        try:
            response = requests.post(f"{base}/api/v1/media", json=body, auth=auth, timeout=300)
        except requests.RequestException as exc:
            return time.perf_counter() - started, -1, {"error": repr(exc)[:200]}
        elapsed = time.perf_counter() - started
        try:
            parsed = response.json()
        except ValueError:
            parsed = {"text": response.text[:200]}
        return elapsed, response.status_code, parsed

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(uploads)) as pool:
        results = list(pool.map(one, uploads))
    wall = time.perf_counter() - started
    failures = [(u.name, s, b) for u, (_, s, b) in zip(uploads, results, strict=True) if s != 201]
    latencies = [r[0] for r in results]

    # Let the optimiser settle, then check every URL against what was sent or recorded.
    def settled(created: dict[str, Any]) -> dict[str, Any]:
        for _ in range(600):
            shown = requests.get(
                f"{base}/api/v1/media/{created['mediaId']}", auth=auth, timeout=30
            ).json()
            if shown["optimization"]["state"] != "pending":
                return dict(shown)
            time.sleep(0.5)
        raise RuntimeError(f"{created['mediaId']} still pending")

    mismatches, optimised = [], 0
    for upload, (_, status, created) in zip(uploads, results, strict=True):
        if status != 201:
            continue
        record = settled(created)
        served = hashlib.sha256(requests.get(created["uri"], timeout=60).content).hexdigest()
        sent = hashlib.sha256(upload.data).hexdigest()
        optimised += record["optimization"]["state"] == "optimized"
        if served not in (
            sent if record["optimization"]["state"] != "optimized" else record["sha256"],
        ):
            mismatches.append(upload.name)
    total_mb = sum(len(u.data) for u in uploads) / MB
    return {
        "uploads": len(uploads), "failed": failures[:5], "failedCount": len(failures),
        "hashMismatches": mismatches, "optimised": optimised, "megabytes": round(total_mb, 1),
        "wallSeconds": round(wall, 2), "uploadsPerSecond": round(len(uploads) / wall, 1),
        "megabytesPerSecond": round(total_mb / wall, 1),
        "p50Seconds": round(statistics.median(latencies), 3),
        "p99Seconds": round(percentile(latencies, 0.99), 3),
    }  # fmt: skip


def run_send(base: str, app: App, account: dict[str, str], recipients: int) -> dict[str, Any]:
    auth = (account["email"], PASSWORD)
    numbers = [f"+1555{7000000 + n:07d}" for n in range(recipients)]
    batches = [numbers[i : i + 100] for i in range(0, len(numbers), 100)]

    def one(batch: list[str]) -> int:
        body = {"from": account["number"], "to": batch, "body": "Load test: hello!"}
        response = requests.post(f"{base}/api/v1/messages", json=body, auth=auth, timeout=120)
        return response.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        statuses = list(pool.map(one, batches))
    accepted = time.perf_counter() - started
    table = app.storage.table(MESSAGES_TABLE)
    query = "PartitionKey eq @t and Status eq 'delivered'"
    delivered = 0
    while delivered < recipients and time.perf_counter() - started < 600:
        rows = table.query_entities(query, parameters={"t": account["tenant"]}, select=["RowKey"])
        delivered = sum(1 for _ in rows)
        time.sleep(0.5)
    return {
        "recipients": recipients, "requests": len(batches), "statuses": sorted(set(statuses)),
        "acceptedSeconds": round(accepted, 2), "delivered": delivered,
        "allDeliveredSeconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--recipients", type=int, default=1000)
    args = parser.parse_args(argv)

    print(f"generating {args.uploads} files ...", flush=True)
    uploads = make_uploads(args.uploads)
    store = azurite.start()
    port = azurite.free_port()
    server: subprocess.Popen[bytes] | None = None
    try:
        settings = Settings(media_storage_connection_string=store.connection_string)
        app = App.build(settings)
        tenant = app.directory.create_tenant(f"load-{uuid.uuid4().hex[:6]}")
        email = f"load-{uuid.uuid4().hex[:8]}@example.com"
        app.directory.create_user(email, PASSWORD)
        app.directory.grant(email, tenant.id)
        number = "+15550100000"
        app.directory.provision_number(tenant.id, number)
        account = {"tenant": tenant.id, "email": email, "number": number}
        env = {**os.environ, "MEDIA_STORAGE_CONNECTION_STRING": store.connection_string,
               "CARRIER_GATEWAY_URL": ""}  # fmt: skip
        # The local host as `make run` starts it, with a listen backlog that admits a burst of
        # 200 connections (socketserver's default is 5; see the report).
        serve = (
            "import socketserver, sys; socketserver.TCPServer.request_queue_size = 512; "
            f"from tools.localhost import main; sys.exit(main(['--port', '{port}']))"
        )
        server = subprocess.Popen(
            [sys.executable, "-c", serve],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        # One request per route first: the local host imports a function on its first call, and
        # a cold burst races that import (see the report); Azure's worker loads them at start.
        auth = (email, PASSWORD)
        requests.get(f"{base}/api/v1/media/{'0' * 32}", auth=auth, timeout=30)
        requests.post(f"{base}/api/v1/media", json={}, auth=auth, timeout=30)
        requests.post(f"{base}/api/v1/messages", json={}, auth=auth, timeout=30)
        print("uploads:", run_uploads(base, account, uploads), flush=True)
        print(f"serving process peak RSS: {peak_rss_mib(server.pid):.0f} MiB", flush=True)
        print("send:", run_send(base, app, account, args.recipients), flush=True)
        print(f"serving process peak RSS: {peak_rss_mib(server.pid):.0f} MiB", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        store.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
