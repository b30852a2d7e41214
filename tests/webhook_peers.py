"""Local peers for inbound MMS tests: a media server standing in for the carrier's file host, a
customer webhook receiver that verifies every request with the `standardwebhooks` library, and
helpers to sign carrier events."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.inbound.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, carrier_signature

CARRIER_SECRET = "carrier-shared-secret-for-tests-0123456789"
SAMPLE_EVENT = Path(__file__).parent / "events" / "inbound_mms.json"


def sample_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(SAMPLE_EVENT.read_text())
    event.update(overrides)
    return event


def carrier_headers(
    body: bytes, *, secret: str = CARRIER_SECRET, at: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: carrier_signature(secret, stamp, body),
    }


def post_inbound(
    base_url: str, event: dict[str, Any], *, timeout: float = 10, **sign: Any
) -> requests.Response:
    """POST a carrier event to the local host, signed as the carrier signs it (`sign` may give
    another `secret` or timestamp `at`)."""
    body = json.dumps(event).encode()
    return requests.post(
        f"{base_url}/api/v1/webhooks/inbound", data=body, headers=carrier_headers(body, **sign),
        timeout=timeout,
    )  # fmt: skip


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def media_server(files: dict[str, tuple[bytes, str]]) -> Iterator[str]:
    """Serves `files` ({path: (bytes, content type)}); yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path)
            if found is None:
                self.send_error(404)
                return
            data, content_type = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(ConnectionError):  # the client stops reading at its cap
                self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serve(Handler) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    payload: Any  # the verified JSON, or None when verification failed
    error: str | None


@dataclass
class Receiver:
    """A customer endpoint: verifies each request with `secret`, answers from `statuses` in turn
    (then `default`) `delay` seconds after it recorded the request, and remembers everything it
    was sent."""

    secret: str
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""

    @property
    def verified(self) -> list[Received]:
        return [r for r in self.received if r.error is None]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                try:
                    payload, error = Webhook(receiver.secret).verify(body, headers), None
                except WebhookVerificationError as exc:
                    payload, error = None, str(exc)
                receiver.received.append(Received(headers, body, payload, error))
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                time.sleep(receiver.delay)
                with contextlib.suppress(ConnectionError):  # the sender died meanwhile
                    self.send_response(status if error is None else 400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextmanager
def receiving(receiver: Receiver, port: int = 0) -> Iterator[Receiver]:
    with serve(receiver.handler(), port) as server:
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        yield receiver
