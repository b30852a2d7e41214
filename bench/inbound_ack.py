"""Inbound webhook acknowledgement latency: how fast the carrier gets its 200.

Run: `.venv/bin/python -m bench.inbound_ack [N]`. Starts its own in-memory Azurite and the local
host (with its queue triggers processing in the background, as they would in production), then
sends N (default 200) sequential, correctly signed inbound events, each a new `messageId` with two
attachments, over one keep-alive HTTP connection, and prints p50/p95/p99/max. The target is
p99 <= 200 ms: the endpoint only verifies, records and queues; downloads happen later.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import uuid

import requests
from pydantic import SecretStr

from shared.app import App, install
from shared.inbound.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, carrier_signature
from shared.settings import Settings
from tools import azurite
from tools.localhost import LocalHost, TriggerRunner, make_server

SECRET = "bench-carrier-secret-0123456789abcdef"  # noqa: S105 - throwaway key for an in-memory emulator
WARMUP = 10


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def attachment(name: str) -> dict[str, str]:
    # Never fetched during the timing: processing runs after the acknowledgement.
    return {"name": name, "url": f"https://127.0.0.1:9/{name}", "contentType": "image/jpeg"}


def main(count: int = 200) -> None:
    emulator = azurite.start()
    try:
        settings = Settings(
            media_storage_connection_string=emulator.connection_string,
            carrier_webhook_secret=SecretStr(SECRET),
            outbound_allow_loopback=True,
        )
        app = App.build(settings)
        install(app)
        tenant = app.directory.create_tenant("bench")
        number = "+15557654321"
        app.directory.provision_number(tenant.id, number)
        host = LocalHost()
        server = make_server(host, azurite.free_port())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        triggers = TriggerRunner(host, app.storage)
        triggers.start()
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/webhooks/inbound"
        session = requests.Session()
        timings: list[float] = []
        for i in range(WARMUP + count):
            body = json.dumps(
                {
                    "messageId": f"SM{uuid.uuid4().hex}",
                    "from": "+15559876543",
                    "to": number,
                    "message": "benchmark",
                    "attachments": [attachment("a.jpg"), attachment("b.jpg")],
                }
            ).encode()
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(stamp),
                SIGNATURE_HEADER: carrier_signature(SECRET, stamp, body),
            }
            started = time.perf_counter()
            response = session.post(url, data=body, headers=headers, timeout=10)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.text
            if i >= WARMUP:
                timings.append(elapsed)
        triggers.stop()
        server.shutdown()
        print(
            f"inbound ack over HTTP, {count} sequential signed events: "
            f"p50 {statistics.median(timings):.1f} ms, p95 {percentile(timings, 95):.1f} ms, "
            f"p99 {percentile(timings, 99):.1f} ms, max {max(timings):.1f} ms"
        )
    finally:
        install(None)
        emulator.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
