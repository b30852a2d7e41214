"""Send benchmark: 202 latency of a 3-media MMS send and sandbox delivery throughput.

Run: `.venv/bin/python -m bench.send [--sends 200] [--recipients 1000]`. Starts its own in-memory
Azurite and the local host (HTTP + queue triggers) in this process, then:
- POSTs `--sends` sequential 3-media sends (this service's own media) and reports p50/p99;
- POSTs one send to `--recipients` numbers (in batches of the recipient limit) and reports the
  time until every message is `delivered` by the sandbox gateway, i.e. delivery throughput.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import requests

from shared.app import App, install
from shared.settings import Settings
from tests import samples
from tests.conftest import make_account
from tools import azurite
from tools.localhost import LocalHost, TriggerRunner, make_server


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--recipients", type=int, default=1000)
    args = parser.parse_args()

    emulator = azurite.start()
    settings = Settings(media_storage_connection_string=emulator.connection_string)
    app = App.build(settings)
    install(app)
    host = LocalHost()
    server = make_server(host, azurite.free_port())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    triggers = TriggerRunner(host, app.storage, poll_seconds=0.05)
    triggers.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    session = requests.Session()
    try:
        account = make_account(app)
        session.auth = account.auth
        urls = [
            app.media.put(
                tenant_id=account.tenant_id, phone_number=account.number, file_name=f"p{i}.jpg",
                original_file_name=f"p{i}.jpg", content_type="image/jpeg",
                data=samples.image("JPEG"), optimization_state="not_needed",
            ).uri
            for i in range(3)
        ]  # fmt: skip
        body = {
            "from": account.number,
            "to": ["+15559876543"],
            "body": "Gallery",
            "mediaUrls": urls,
        }
        latencies = []
        for _ in range(args.sends):
            start = time.perf_counter()
            response = session.post(f"{base}/api/v1/messages", json=body, timeout=30)
            latencies.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 202, response.text
        print(f"\n3-media send, {args.sends} sequential requests through the local host")
        print(f"202 latency ms: p50 {statistics.median(latencies):.1f}  "
              f"p99 {percentile(latencies, 99):.1f}  max {max(latencies):.1f}")  # fmt: skip

        # Let the single-message deliveries above drain before timing the fan-out.
        store = app.messages
        limit = settings.max_recipients
        numbers = [f"+1555{i:07d}" for i in range(args.recipients)]
        start = time.perf_counter()
        ids: list[str] = []
        for offset in range(0, len(numbers), limit):
            batch = {"from": account.number, "to": numbers[offset : offset + limit], "body": "Hi"}
            response = session.post(f"{base}/api/v1/messages", json=batch, timeout=60)
            assert response.status_code == 202, response.text
            ids += [m["messageId"] for m in response.json()["messages"]]
        accepted = time.perf_counter() - start
        pending = set(ids)
        while pending:
            time.sleep(0.25)
            rows = app.storage.table("messages").query_entities(
                "PartitionKey eq @t and Status eq 'delivered'", parameters={"t": account.tenant_id},
                select=["RowKey"],
            )  # fmt: skip
            pending -= {r["RowKey"] for r in rows}
        elapsed = time.perf_counter() - start
        assert all(store.get(account.tenant_id, i) for i in ids[:5])
        rate = len(ids) / elapsed
        print(f"\nFan-out to {len(ids)} recipients: accepted in {accepted:.2f} s, all delivered "
              f"in {elapsed:.2f} s ({rate:.0f} messages/s through the sandbox)")  # fmt: skip
    finally:
        triggers.stop()
        server.shutdown()
        install(None)
        emulator.stop()


if __name__ == "__main__":
    main()
