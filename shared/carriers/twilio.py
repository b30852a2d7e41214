"""Twilio Programmable Messaging: sending (form-encoded `Messages.json`, `MediaUrl` repeated, a
`StatusCallback` per message), the `X-Twilio-Signature` check, status callbacks and inbound
messages (form-encoded; media behind HTTP Basic on api.twilio.com, redirecting to a CDN)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from shared.carriers.common import ProviderAnswer, ProviderSession, StatusReport, origin
from shared.errors import SignatureInvalid
from shared.inbound.event import CarrierEvent, carrier_event
from shared.messages.gateway import CarrierReceipt, OutboundSms
from shared.settings import Settings

CARRIER = "twilio"
INBOUND_PATH = "/api/v1/carriers/twilio/inbound"
STATUS_PATH = "/api/v1/carriers/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_MEDIA = 10

# Twilio's MessageStatus values (docs/carriers.md has the table); unlisted ones record nothing.
STATUS_MAP = {
    "accepted": "sent", "scheduled": "sent", "queued": "sent", "sending": "sent", "sent": "sent",
    "delivered": "delivered", "read": "delivered",
    "undelivered": "undelivered", "failed": "failed", "canceled": "failed",
}  # fmt: skip


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TwilioGateway:
    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        assert settings.twilio_account_sid and settings.twilio_auth_token
        assert settings.public_base_url
        self._sid = settings.twilio_account_sid
        self._auth = _basic(self._sid, settings.twilio_auth_token.get_secret_value())
        self._status_url = settings.public_base_url.rstrip("/") + STATUS_PATH
        self.session = ProviderSession(CARRIER, settings.twilio_api_base_url, transport=transport)

    def send(self, sms: OutboundSms) -> CarrierReceipt:
        # Our reference rides in the callback URL, which Twilio's signature covers.
        callback = f"{self._status_url}?{urlencode({'ref': f'{sms.tenant_id}/{sms.message_id}'})}"
        form: dict[str, str | list[str]] = {"To": sms.to, "From": sms.from_number}
        if sms.body:
            form["Body"] = sms.body
        if sms.media_urls:
            form["MediaUrl"] = list(sms.media_urls)  # repeated, once per medium
        form["StatusCallback"] = callback
        answer = self.session.request(
            "POST", f"/2010-04-01/Accounts/{self._sid}/Messages.json",
            headers=lambda: {"Authorization": self._auth, "Accept": "application/json"},
            rejection=_rejection, data=form,
        )  # fmt: skip
        return CarrierReceipt(str(answer.body["sid"]), delivered=False)


def _rejection(answer: ProviderAnswer) -> str:
    body = answer.body if isinstance(answer.body, dict) else {}
    return f"{body.get('code') or answer.status} {body.get('message') or 'rejected'}".strip()


class _FormParams:
    """Form fields as Twilio's validator reads a multi-dict (`getlist`), repeated keys kept."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def __iter__(self) -> Any:
        return iter(dict.fromkeys(k for k, _ in self._pairs))

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self._pairs if k == name]


def verify(settings: Settings, request_url: str, form: list[tuple[str, str]],
           headers: Mapping[str, str]) -> None:  # fmt: skip
    """Raise `SignatureInvalid` unless the signature matches the URL Twilio called (built from
    PUBLIC_BASE_URL plus the path and query we were called on) and the form. The official
    validator does the work, trying the URL with and without the default port as Twilio may
    sign either."""
    from twilio.request_validator import RequestValidator  # stdlib only; loaded on first use

    assert settings.twilio_auth_token and settings.public_base_url
    signature = next((v for k, v in headers.items() if k.lower() == "x-twilio-signature"), "")
    if not signature:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} is missing")
    called = urlsplit(request_url)
    url = settings.public_base_url.rstrip("/") + called.path
    if called.query:
        url += "?" + called.query
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    if not validator.validate(url, _FormParams(form), signature):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the request")


def status_report(form: Mapping[str, str], query: Mapping[str, str]) -> StatusReport:
    raw = form.get("MessageStatus", "").lower()
    status = STATUS_MAP.get(raw)
    reason = None
    if status in ("failed", "undelivered"):
        reason = f"{CARRIER}:{form.get('ErrorCode') or raw} {raw}"
    tenant_id, _, message_id = query.get("ref", "").partition("/")
    reference = (tenant_id, message_id) if tenant_id and message_id else None
    return StatusReport(form.get("MessageSid", ""), status, reason, reference)


def inbound_event(form: Mapping[str, str]) -> CarrierEvent:
    try:
        count = min(int(form.get("NumMedia", "0") or 0), MAX_MEDIA)
    except ValueError:
        count = 0
    attachments = [
        {"url": form[f"MediaUrl{i}"], "contentType": form.get(f"MediaContentType{i}")}
        for i in range(count)
        if form.get(f"MediaUrl{i}")
    ]
    return carrier_event(
        CARRIER,
        {"messageId": f"{CARRIER}:{form.get('MessageSid', '')}", "from": form.get("From", ""),
         "to": form.get("To", ""), "message": form.get("Body") or None,
         "attachments": attachments},
    )  # fmt: skip


def media_origin(settings: Settings) -> tuple[str, str, int]:
    """Where Twilio serves inbound media (behind Basic auth): its API host."""
    return origin(settings.twilio_api_base_url)


def media_credentials(settings: Settings) -> dict[str, str]:
    assert settings.twilio_account_sid and settings.twilio_auth_token
    token = settings.twilio_auth_token.get_secret_value()
    return {"Authorization": _basic(settings.twilio_account_sid, token)}
