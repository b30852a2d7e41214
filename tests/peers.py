"""Small local HTTP peers for tests: a media host and a fake carrier gateway, on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Resource:
    body: bytes
    content_type: str | None = "image/jpeg"
    status: int = 200
    location: str | None = None  # for redirects


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def media_host(resources: dict[str, Resource]) -> Iterator[str]:
    """Serves `resources` by path, answering HEAD and GET like a plain web server."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, with_body: bool) -> None:
            resource = resources.get(self.path)
            if resource is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(resource.status)
            if resource.location:
                self.send_header("Location", resource.location)
            if resource.content_type:
                self.send_header("Content-Type", resource.content_type)
            self.send_header("Content-Length", str(len(resource.body)))
            self.end_headers()
            if with_body:
                self.wfile.write(resource.body)

        def do_HEAD(self) -> None:
            self._answer(False)

        def do_GET(self) -> None:
            self._answer(True)

        def log_message(self, *args: Any) -> None:
            pass

    with serve(Handler) as url:
        yield url


@dataclass
class FakeCarrier:
    """A carrier gateway: checks the HMAC signature, remembers what it accepted (once per
    Idempotency-Key), and answers from `script` (status codes, then 200s), `delay` seconds after
    it recorded the request."""

    secret: str = "carrier-gateway-secret-for-tests-0123456789"
    script: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_signatures: int = 0
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def running(self) -> Iterator[str]:
        carrier = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers.get("X-Gateway-Timestamp", "")
                expected = "v1=" + hmac.new(carrier.secret.encode(), timestamp.encode() + b"." + body,
                                            hashlib.sha256).hexdigest()  # fmt: skip
                with carrier.lock:
                    if not hmac.compare_digest(
                        expected, self.headers.get("X-Gateway-Signature", "")
                    ):
                        carrier.bad_signatures += 1
                        status = 401
                    else:
                        payload = json.loads(body)
                        carrier.received.append(payload)
                        status = carrier.script.pop(0) if carrier.script else 200
                        if status == 200:
                            key = self.headers["Idempotency-Key"]
                            carrier.accepted.setdefault(key, payload)
                time.sleep(carrier.delay)
                reply = json.dumps(
                    {"carrierMessageId": "c-1", "status": "sent", "reason": "unknown_number"}
                )
                with contextlib.suppress(ConnectionError):  # the sender died meanwhile
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply.encode())

            def log_message(self, *args: Any) -> None:
                pass

        with serve(Handler) as url:
            yield url
