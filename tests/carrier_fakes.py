"""Local fakes of the Twilio, Telnyx and Bandwidth APIs (loopback servers started by tests), each
checking requests the way the provider documents them (auth header, encoding, field names, media
count) and answering with the provider's documented bodies; plus what a test needs to sign
callbacks as each provider does. Twilio's and Telnyx's own libraries are the oracles."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from twilio.request_validator import RequestValidator

from tests.webhook_peers import serve

MAX_MEDIA = 10
# At least 32 bytes each: the settings refuse shorter secrets.
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-auth-token-for-tests-0123456789"
TELNYX_KEY = "KEY-telnyx-api-key-for-tests-0123456789"
BANDWIDTH_ACCOUNT = "9900000"
BANDWIDTH_APPLICATION = "93de2206-9669-4e07-948d-329f4b722ee2"
BANDWIDTH_CLIENT_ID = "bandwidth-client-id"
BANDWIDTH_CLIENT_SECRET = "bandwidth-client-secret-for-tests-0123"
BANDWIDTH_CALLBACK_USER = "bandwidth-callbacks"
BANDWIDTH_CALLBACK_PASSWORD = "bandwidth-callback-password-for-tests"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, body: Any, **headers: str) -> Reply:
        return cls(status, json.dumps(body).encode(), headers=headers)


class Fake:
    """A loopback server: `handle(seen)` answers each request; everything is remembered. A
    `script` of statuses answers the next requests to `scripted_path` first (e.g. 500 then 429)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.refused: list[Seen] = []
        self.script: list[Reply] = []
        self.url = ""
        self.lock = threading.Lock()

    def handle(self, seen: Seen) -> Reply:
        raise NotImplementedError

    def refuse(self, seen: Seen, status: int, body: Any) -> Reply:
        self.refused.append(seen)
        return Reply.json(status, body)

    @contextmanager
    def running(self) -> Iterator[str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()),
                            self.rfile.read(length))  # fmt: skip
                with fake.lock:
                    fake.seen.append(seen)
                    reply = fake.handle(seen)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        with serve(Handler) as server:
            self.url = f"http://127.0.0.1:{server.server_address[1]}"
            yield self.url


class Cdn(Fake):
    """Where a provider's media URL redirects to: serves files, remembers who asked (a request
    carrying credentials here would be a leak)."""

    def __init__(self, files: dict[str, tuple[bytes, str]]) -> None:
        super().__init__()
        self.files = files
        self.redirects: dict[str, str] = {}

    def handle(self, seen: Seen) -> Reply:
        path = urlsplit(seen.path).path
        if path in self.redirects:
            return Reply(302, headers={"Location": self.redirects[path]})
        found = self.files.get(path)
        if found is None:
            return Reply(404)
        return Reply(200, found[0], found[1])


class TwilioFake(Fake):
    """`POST /2010-04-01/Accounts/{sid}/Messages.json` (form, Basic sid:token) and inbound media
    at `/2010-04-01/Accounts/{sid}/Messages/{MM}/Media/{ME}` behind Basic auth, served directly
    or (when `redirects` names it) redirected to a CDN, as Twilio does."""

    def __init__(self) -> None:
        super().__init__()
        self.media: dict[str, tuple[bytes, str]] = {}
        self.redirects: dict[str, str] = {}
        self.sent: list[dict[str, list[str]]] = []

    def media_url(self, name: str) -> str:
        return f"{self.url}/2010-04-01/Accounts/{TWILIO_SID}/Messages/MM{name}/Media/ME{name}"

    def handle(self, seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != basic(TWILIO_SID, TWILIO_TOKEN):
            return self.refuse(seen, 401, {"code": 20003, "message": "Authenticate",
                                           "more_info": "https://www.twilio.com/docs/errors/20003",
                                           "status": 401})  # fmt: skip
        path = urlsplit(seen.path).path
        if seen.method == "GET":
            if path in self.redirects:
                return Reply(307, headers={"Location": self.redirects[path]})
            found = self.media.get(path)
            return Reply(200, *found) if found else Reply(404)
        if path != f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json":
            return Reply(404)
        if not seen.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return self.refuse(seen, 415, {"code": 21609, "message": "form encoding expected"})
        form = seen.form
        media = form.get("MediaUrl", [])
        if not form.get("To") or not form.get("From") or not (form.get("Body") or media):
            return self.refuse(seen, 400, {"code": 21602, "message": "Message body is required.",
                                           "status": 400})  # fmt: skip
        if len(media) > MAX_MEDIA:
            return self.refuse(seen, 400, {"code": 21623, "message": "Too many media",
                                           "status": 400})  # fmt: skip
        if self.script:
            return self.script.pop(0)
        self.sent.append(form)
        sid = "SM" + uuid.uuid4().hex
        return Reply.json(201, {
            "account_sid": TWILIO_SID, "sid": sid, "status": "queued", "to": form["To"][0],
            "from": form["From"][0], "body": (form.get("Body") or [""])[0],
            "num_media": str(len(media)), "error_code": None, "error_message": None,
            "uri": f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}.json",
        })  # fmt: skip


def twilio_signature(url: str, form: dict[str, str], token: str = "") -> str:
    """What Twilio sends as X-Twilio-Signature, computed by Twilio's own library."""
    return str(RequestValidator(token or TWILIO_TOKEN).compute_signature(url, form))


class TelnyxFake(Fake):
    """`POST /v2/messages` (JSON, Bearer API key): honours `Idempotency-Key` (the same key is the
    same message, not a second one), as Telnyx documents."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []
        self.by_key: dict[str, Reply] = {}

    def handle(self, seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != f"Bearer {TELNYX_KEY}":
            return self.refuse(
                seen, 401, {"errors": [{"code": "10009", "title": "Authentication failed"}]}
            )
        if seen.method != "POST" or seen.path != "/v2/messages":
            return Reply(404)
        key = seen.headers.get("Idempotency-Key", "")
        if key in self.by_key:
            return self.by_key[key]
        body = seen.json
        media = body.get("media_urls", [])
        if not isinstance(body.get("to"), str) or not body.get("from") or len(media) > MAX_MEDIA:
            return self.refuse(seen, 422, {"errors": [{"code": "40002", "title": "Invalid parameter",
                                                       "detail": "to must be a phone number"}]})  # fmt: skip
        if self.script:
            return self.script.pop(0)
        self.sent.append(body)
        reply = Reply.json(200, {"data": {
            "record_type": "message", "direction": "outbound", "id": str(uuid.uuid4()),
            "type": "MMS" if media else "SMS", "from": {"phone_number": body["from"]},
            "to": [{"phone_number": body["to"], "status": "queued"}], "text": body.get("text"),
            "media": [{"url": u} for u in media], "webhook_url": body.get("webhook_url"),
        }})  # fmt: skip
        if key:
            self.by_key[key] = reply
        return reply


class TelnyxSigner:
    """Signs events as Telnyx does: Ed25519 over `{timestamp}|{body}`."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = base64.b64encode(raw).decode()

    def headers(self, body: bytes, *, at: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if at is None else at)
        signature = self.key.sign(stamp.encode() + b"|" + body)
        return {"Content-Type": "application/json", "telnyx-timestamp": stamp,
                "telnyx-signature-ed25519": base64.b64encode(signature).decode()}  # fmt: skip


def telnyx_event(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"event_type": event_type, "id": str(uuid.uuid4()),
                     "occurred_at": "2026-01-01T00:00:00.000+00:00", "payload": payload,
                     "record_type": "event"}, "meta": {"attempt": 1, "delivered_to": ""}}  # fmt: skip


class BandwidthFake(Fake):
    """The identity service's token endpoint (`/api/v1/oauth2/token`, client credentials over
    Basic), `POST /api/v2/users/{accountId}/messages` (JSON, Bearer) and the media API (Bearer),
    which may redirect to a CDN."""

    TOKEN_PATH = "/api/v1/oauth2/token"

    def __init__(self) -> None:
        super().__init__()
        self.tokens_issued = 0
        self.token = ""
        self.media: dict[str, tuple[bytes, str]] = {}
        self.redirects: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []

    def media_url(self, name: str) -> str:
        return f"{self.url}/api/v2/users/{BANDWIDTH_ACCOUNT}/media/{uuid.uuid4().hex}/0/{name}"

    def handle(self, seen: Seen) -> Reply:
        path = urlsplit(seen.path).path
        if path == self.TOKEN_PATH:
            if seen.headers.get("Authorization") != basic(
                BANDWIDTH_CLIENT_ID, BANDWIDTH_CLIENT_SECRET
            ):
                return self.refuse(seen, 401, {"error": "invalid_client"})
            if seen.form.get("grant_type") != ["client_credentials"]:
                return self.refuse(seen, 400, {"error": "unsupported_grant_type"})
            self.tokens_issued += 1
            self.token = uuid.uuid4().hex
            return Reply.json(200, {"access_token": self.token, "token_type": "Bearer",
                                    "expires_in": 3600})  # fmt: skip
        if not self.token or seen.headers.get("Authorization") != f"Bearer {self.token}":
            return self.refuse(seen, 401, {"type": "unauthorized", "description": "Bearer token"})
        if seen.method == "GET":
            if path in self.redirects:
                return Reply(307, headers={"Location": self.redirects[path]})
            found = self.media.get(path)
            return Reply(200, *found) if found else Reply(404)
        if path != f"/api/v2/users/{BANDWIDTH_ACCOUNT}/messages":
            return Reply(404)
        body = seen.json
        media = body.get("media", [])
        if (body.get("applicationId") != BANDWIDTH_APPLICATION or not isinstance(body.get("to"), list)
                or not body.get("from") or len(media) > MAX_MEDIA):  # fmt: skip
            return self.refuse(seen, 400, {"type": "request-validation",
                                           "description": "Your request could not be accepted"})  # fmt: skip
        if self.script:
            return self.script.pop(0)
        self.sent.append(body)
        return Reply.json(202, {
            "id": f"{int(time.time() * 1000)}{uuid.uuid4().hex[:16]}", "owner": body["from"],
            "applicationId": BANDWIDTH_APPLICATION, "time": "2026-01-01T00:00:00.000Z",
            "segmentCount": 1, "direction": "out", "to": body["to"], "from": body["from"],
            "media": media, "text": body.get("text", ""), "tag": body.get("tag"),
            "priority": "default",
        })  # fmt: skip


def bandwidth_callback(kind: str, to: str, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": kind, "time": "2026-01-01T00:00:00.000Z", "description": kind, "to": to,
            "message": {"time": "2026-01-01T00:00:00.000Z", "direction": "in" if kind ==
                        "message-received" else "out", "applicationId": BANDWIDTH_APPLICATION,
                        "segmentCount": 1, **message}, **extra}  # fmt: skip


def carrier_settings(
    base_url: str, *, twilio: str = "", telnyx: str = "", telnyx_public_key: str = "",
    bandwidth: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Settings that point each configured carrier at its fake, and PUBLIC_BASE_URL at the
    local host under test."""
    values: dict[str, Any] = {"public_base_url": base_url}
    if twilio:
        values.update(twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN,
                      twilio_api_base_url=twilio)  # fmt: skip
    if telnyx:
        values.update(telnyx_api_key=TELNYX_KEY, telnyx_public_key=telnyx_public_key,
                      telnyx_api_base_url=telnyx)  # fmt: skip
    if bandwidth:
        values.update(
            bandwidth_account_id=BANDWIDTH_ACCOUNT, bandwidth_application_id=BANDWIDTH_APPLICATION,
            bandwidth_client_id=BANDWIDTH_CLIENT_ID, bandwidth_client_secret=BANDWIDTH_CLIENT_SECRET,
            bandwidth_callback_username=BANDWIDTH_CALLBACK_USER,
            bandwidth_callback_password=BANDWIDTH_CALLBACK_PASSWORD,
            bandwidth_api_base_url=bandwidth, bandwidth_oauth_url=bandwidth + BandwidthFake.TOKEN_PATH,
        )  # fmt: skip
    return values
