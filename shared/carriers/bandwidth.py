"""Bandwidth Messaging API v2: sending (JSON `POST /api/v2/users/{accountId}/messages` with
`applicationId`, `to` as an array, `media` and our message id as `tag`), OAuth2 client
credentials (token cached until it expires), HTTP Basic on the application's callbacks, and
the callbacks themselves (`message-received`, `message-sending`, `-delivered`, `-failed`).
Inbound media live on the messaging API and need the OAuth token."""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from shared.carriers.common import ProviderAnswer, ProviderSession, StatusReport, origin
from shared.errors import Unauthorized
from shared.inbound.event import CarrierEvent, carrier_event
from shared.messages.gateway import CarrierReceipt, GatewayUnavailable, OutboundSms
from shared.settings import Settings

CARRIER = "bandwidth"
INBOUND_PATH = "/api/v1/carriers/bandwidth/inbound"
STATUS_PATH = "/api/v1/carriers/bandwidth/status"
INBOUND_TYPE = "message-received"
STATUS_MAP = {
    "message-sending": "sent",
    "message-delivered": "delivered",
    "message-failed": "failed",
}
_TOKEN_MARGIN_SECONDS = 60
# Parts of an inbound MMS that are the handset's packaging, not something a person sent.
_PACKAGING_SUFFIXES = (".smil", ".xml")


class OAuthTokens:
    """Client-credentials tokens from Bandwidth's identity service, shared by sends and media
    downloads, renewed a minute before they expire."""

    def __init__(self, settings: Settings, client: httpx.Client) -> None:
        assert settings.bandwidth_client_id and settings.bandwidth_client_secret
        secret = settings.bandwidth_client_secret.get_secret_value()
        self._url = settings.bandwidth_oauth_url
        self._basic = (
            "Basic "
            + base64.b64encode(f"{settings.bandwidth_client_id}:{secret}".encode()).decode()
        )
        self._client = client
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def bearer(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._token, lifetime = self._fetch()
                self._expires = time.monotonic() + max(0, lifetime - _TOKEN_MARGIN_SECONDS)
            return "Bearer " + self._token

    def _fetch(self) -> tuple[str, int]:
        try:
            response = self._client.post(
                self._url, data={"grant_type": "client_credentials"},
                headers={"Authorization": self._basic, "Accept": "application/json"},
            )  # fmt: skip
            body = response.json()
            if response.status_code == 200 and isinstance(body, dict):
                return str(body["access_token"]), int(body.get("expires_in", 3600))
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass
        raise GatewayUnavailable("no OAuth token from Bandwidth's identity service")


class BandwidthGateway:
    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        assert settings.bandwidth_account_id and settings.bandwidth_application_id
        self._account = settings.bandwidth_account_id
        self._application = settings.bandwidth_application_id
        self.session = ProviderSession(
            CARRIER, settings.bandwidth_api_base_url, transport=transport
        )
        self.tokens = OAuthTokens(settings, self.session.client)

    def send(self, sms: OutboundSms) -> CarrierReceipt:
        body: dict[str, Any] = {"applicationId": self._application, "to": [sms.to],
                                "from": sms.from_number, "text": sms.body,
                                "tag": sms.message_id}  # fmt: skip
        if sms.media_urls:
            body["media"] = sms.media_urls
        answer = self.session.request(
            "POST", f"/api/v2/users/{self._account}/messages",
            headers=lambda: {"Authorization": self.tokens.bearer(), "Accept": "application/json"},
            rejection=_rejection, json=body,
        )  # fmt: skip
        return CarrierReceipt(str(answer.body["id"]), delivered=False)


def _rejection(answer: ProviderAnswer) -> str:
    body = answer.body if isinstance(answer.body, dict) else {}
    return f"{body.get('type') or answer.status} {body.get('description') or 'rejected'}"


def verify(settings: Settings, headers: Mapping[str, str]) -> None:
    """HTTP Basic with the callback credentials set on the Bandwidth application; user name and
    password are both compared in constant time."""
    assert settings.bandwidth_callback_username and settings.bandwidth_callback_password
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.partition(" ")
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        user, sep, password = b"", b"", b""
    expected_password = settings.bandwidth_callback_password.get_secret_value().encode()
    matched = hmac.compare_digest(user, settings.bandwidth_callback_username.encode())
    matched &= hmac.compare_digest(password, expected_password)
    if scheme.lower() != "basic" or not sep or not matched:
        raise Unauthorized("Bandwidth callback credentials are missing or wrong.", realm=CARRIER)


def callbacks(body: Any) -> list[dict[str, Any]]:
    """Bandwidth posts a JSON array of callbacks; anything else is not one of its requests."""
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise TypeError("a Bandwidth callback body is a JSON array of objects")
    return body


def _message(callback: Mapping[str, Any]) -> dict[str, Any]:
    message = callback.get("message")
    return message if isinstance(message, dict) else {}


def status_sender(callback: Mapping[str, Any]) -> str:
    """Our number that sent the message a status callback is about."""
    return str(_message(callback).get("from") or "")


def status_report(callback: Mapping[str, Any], owner: str | None) -> StatusReport:
    message = _message(callback)
    status = STATUS_MAP.get(str(callback.get("type", "")))
    reason = None
    if status == "failed":
        code = callback.get("errorCode") or "failed"
        reason = f"{CARRIER}:{code} {callback.get('description', '')}"
    tag = str(message.get("tag") or "")
    reference = (owner, tag) if owner and tag else None
    return StatusReport(str(message.get("id", "")), status, reason.strip() if reason else None,
                        reference)  # fmt: skip


def inbound_event(callback: Mapping[str, Any]) -> CarrierEvent:
    message = _message(callback)
    urls = message.get("media")
    media = [
        {"url": url, "name": url.rsplit("/", 1)[-1]}
        for url in (urls if isinstance(urls, list) else [])
        if isinstance(url, str) and not url.lower().endswith(_PACKAGING_SUFFIXES)
    ]
    return carrier_event(
        CARRIER,
        {"messageId": f"{CARRIER}:{message.get('id', '')}", "from": message.get("from", ""),
         "to": callback.get("to") or "", "message": message.get("text") or None,
         "attachments": media, "receivedAt": callback.get("time")},
    )  # fmt: skip


def media_origin(settings: Settings) -> tuple[str, str, int]:
    """Where Bandwidth serves inbound media (behind the OAuth token): its messaging API."""
    return origin(settings.bandwidth_api_base_url)
