"""Uploads through the local host over real HTTP, next to a raw PUT of the same bytes to the same
storage emulator, in one run.

Run: `.venv/bin/python -m bench.upload_http`. Starts its own in-memory Azurite and the project's
local host server (`tools.localhost.make_server`) in a process of its own, as the Functions host
is. The HTTP uploads are timed with the host's trigger runner off: its pollers (every queue, blob
and timer function, every 0.2 s) would load the single-threaded emulator that both sides of
each comparison use. The file is a 5,242,880-byte PDF, which the optimiser never rewrites.
Bodies are encoded once, before timing; each timed request is one connection, as the host
serves them (`Connection: close`). Targets: JSON base64 at most 2x the raw PUT, multipart
at most 1.5x. Upload sessions are timed too: the client's PUT of the file to its session URL (the
bytes never pass through the host), and the whole exchange (open, PUT, complete: the wait for
the blob trigger, which the local host runs by polling every 0.2 s, included), on a second host
with its triggers on.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from azure.storage.blob import BlobSasPermissions, generate_blob_sas
from urllib3 import encode_multipart_formdata

ROOT = Path(__file__).resolve().parent.parent
SIZE = 5 * 1024 * 1024
RUNS = 9


def timed_ms(fn: Callable[[], requests.Response], expect: int) -> float:
    start = time.perf_counter()
    response = fn()
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == expect, response.text[:300]
    return elapsed


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the local host exited")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the local host did not start")


def serve(port: int, triggers: bool) -> None:
    """The local host's server (and trigger runner, if asked), on the environment's storage."""
    from shared.app import App, install
    from shared.settings import load_settings
    from tools.localhost import LocalHost, TriggerRunner, make_server

    app = App.build(load_settings())
    install(app)
    host = LocalHost()
    if triggers:
        TriggerRunner(host, app.storage).start()
    make_server(host, port).serve_forever()


def start_host(connection_string: str, triggers: bool) -> tuple[str, subprocess.Popen[bytes]]:
    from tools import azurite

    port = azurite.free_port()
    env = {**os.environ, "MEDIA_STORAGE_CONNECTION_STRING": connection_string}
    command = [sys.executable, "-m", "bench.upload_http", "--serve", str(port)]
    process = subprocess.Popen(
        command + (["--triggers"] if triggers else []),
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/api/health", process)
    return base, process


def main() -> None:
    from shared.app import App
    from shared.settings import Settings
    from tests.conftest import make_account
    from tools import azurite

    emulator = azurite.start()
    hosts: list[subprocess.Popen[bytes]] = []
    try:
        base, process = start_host(emulator.connection_string, triggers=False)
        hosts.append(process)
        app = App.build(Settings(media_storage_connection_string=emulator.connection_string))
        account = make_account(app)
        payload = b"%PDF-1.7\n" + os.urandom(SIZE - 9)
        fields = {"phoneNumber": account.number, "tenantId": account.tenant_id}
        json_body = json.dumps(
            {**fields, "fileName": "big.pdf", "contentType": "application/pdf",
             "data": base64.b64encode(payload).decode()}
        ).encode()  # fmt: skip
        form_body, form_type = encode_multipart_formdata(
            [*fields.items(), ("file", ("big.pdf", payload, "application/pdf"))]
        )
        container = app.storage.container("benchfloor")
        blob = container.get_blob_client("floor.pdf")
        sas = generate_blob_sas(
            account_name=app.storage.account_name, container_name="benchfloor",
            blob_name="floor.pdf", account_key=app.storage.account_key,
            permission=BlobSasPermissions(create=True, write=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )  # fmt: skip
        raw_url = f"{blob.url}?{sas}"

        def upload(body: bytes, content_type: str) -> Callable[[], requests.Response]:
            return lambda: requests.post(
                f"{base}/api/v1/media", data=body, auth=account.auth, timeout=60,
                headers={"Content-Type": content_type},
            )  # fmt: skip

        def raw_put() -> requests.Response:
            return requests.put(
                raw_url, data=payload, headers={"x-ms-blob-type": "BlockBlob"}, timeout=60
            )

        cases = [
            ("JSON base64", upload(json_body, "application/json"), 2.0, len(json_body)),
            ("multipart", upload(form_body, form_type), 1.5, len(form_body)),
        ]
        for _, fn, _, _ in cases:  # warm: imports, auth cache, containers
            timed_ms(fn, 201)
        timed_ms(raw_put, 201)

        print(f"\nThrough the local host over HTTP vs a raw PUT to the same Azurite, "
              f"{SIZE:,}-byte file, median of {RUNS} (interleaved)")  # fmt: skip
        print(f"{'upload':<12} {'body bytes':>11} {'host ms':>8} {'raw PUT ms':>11} "
              f"{'ratio':>6} {'target':>7}")  # fmt: skip
        for name, fn, target, size in cases:
            ours, floor = [], []
            for _ in range(RUNS):
                ours.append(timed_ms(fn, 201))
                floor.append(timed_ms(raw_put, 201))
            a, b = statistics.median(ours), statistics.median(floor)
            print(f"{name:<12} {size:>11,} {a:>8.1f} {b:>11.1f} {a / b:>6.2f} {target:>7.1f}")

        base, process = start_host(emulator.connection_string, triggers=True)
        hosts.append(process)
        puts, wholes, floor = [], [], []
        for _ in range(RUNS):
            start = time.perf_counter()
            opened = requests.post(
                f"{base}/api/v1/media/uploads", auth=account.auth, timeout=30,
                json={**fields, "fileName": "big.pdf", "contentType": "application/pdf"},
            ).json()  # fmt: skip
            puts.append(
                timed_ms(
                    lambda o=opened: requests.put(
                        o["uploadUrl"], data=payload, headers=o["requiredHeaders"], timeout=60
                    ),
                    201,
                )
            )
            done = requests.post(
                f"{base}/api/v1/media/uploads/{opened['mediaId']}/complete", auth=account.auth,
                timeout=60,
            )  # fmt: skip
            assert done.status_code == 201, done.text
            wholes.append((time.perf_counter() - start) * 1000)
            floor.append(timed_ms(raw_put, 201))
        a, w, b = statistics.median(puts), statistics.median(wholes), statistics.median(floor)
        print(f"{'session PUT':<12} {SIZE:>11,} {a:>8.1f} {b:>11.1f} {a / b:>6.2f} {'-':>7}")
        print(f"{'session all':<12} {SIZE:>11,} {w:>8.1f} {b:>11.1f} {w / b:>6.2f} {'-':>7}")
    finally:
        for process in hosts:
            process.terminate()
            process.wait(timeout=20)
        emulator.stop()


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve(int(sys.argv[sys.argv.index("--serve") + 1]), "--triggers" in sys.argv)
    else:
        main()
