"""Telnyx Messaging API v2: sending (JSON `POST /v2/messages` with `media_urls`, `webhook_url`
and an `Idempotency-Key`), the Ed25519 webhook signature, and the messaging profile's events
(`message.received`, `message.sent`, `message.finalized`). Inbound media are signed links that
need no credentials."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import httpx

from shared.carriers.common import ProviderAnswer, ProviderSession, StatusReport
from shared.errors import SignatureInvalid
from shared.inbound.event import CarrierEvent, carrier_event
from shared.messages.gateway import CarrierReceipt, OutboundSms
from shared.settings import Settings

CARRIER = "telnyx"
EVENTS_PATH = "/api/v1/carriers/telnyx/events"
SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TOLERANCE_SECONDS = 300
INBOUND_EVENT = "message.received"
STATUS_EVENTS = frozenset({"message.sent", "message.finalized"})

# Telnyx's per-recipient `to[].status` values (docs/carriers.md); unlisted ones record nothing.
STATUS_MAP = {
    "queued": "sent", "sending": "sent", "sent": "sent",
    "delivered": "delivered",
    "sending_failed": "failed", "delivery_failed": "undelivered",
}  # fmt: skip


class TelnyxGateway:
    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        assert settings.telnyx_api_key and settings.public_base_url
        self._auth = "Bearer " + settings.telnyx_api_key.get_secret_value()
        self._webhook_url = settings.public_base_url.rstrip("/") + EVENTS_PATH
        self._profile = settings.telnyx_messaging_profile_id
        self.session = ProviderSession(CARRIER, settings.telnyx_api_base_url, transport=transport)

    def send(self, sms: OutboundSms) -> CarrierReceipt:
        body: dict[str, Any] = {"from": sms.from_number, "to": sms.to, "text": sms.body,
                                "webhook_url": self._webhook_url}  # fmt: skip
        if sms.media_urls:
            body["media_urls"] = sms.media_urls
            body["type"] = "MMS"
        if self._profile:
            body["messaging_profile_id"] = self._profile
        # The only one of the three that honours an idempotency key: a retry after a lost
        # response is recognised by Telnyx rather than sent twice.
        headers = {"Authorization": self._auth, "Accept": "application/json",
                   "Idempotency-Key": sms.message_id}  # fmt: skip
        answer = self.session.request(
            "POST", "/v2/messages", headers=lambda: headers, rejection=_rejection, json=body
        )
        return CarrierReceipt(str(answer.body["data"]["id"]), delivered=False)


def _rejection(answer: ProviderAnswer) -> str:
    errors = answer.body.get("errors") if isinstance(answer.body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    text = first.get("detail") or first.get("title") or "rejected"
    return f"{first.get('code') or answer.status} {text}"


def verify(settings: Settings, body: bytes, headers: Mapping[str, str], *, now: float) -> str:
    """Raise `SignatureInvalid` unless `telnyx-signature-ed25519` is the configured key's
    signature of `{telnyx-timestamp}|{raw body}` and the timestamp is within 300 s of `now`.
    Returns the signature, by which a replay of this very request is recognised."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    assert settings.telnyx_public_key
    lowered = {k.lower(): v for k, v in headers.items()}
    signature, stamp = lowered.get(SIGNATURE_HEADER, ""), lowered.get(TIMESTAMP_HEADER, "").strip()
    if not signature or not stamp:
        raise SignatureInvalid("The Telnyx signature or timestamp header is missing")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} is not unix seconds")
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        raise SignatureInvalid(
            f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS} seconds from our clock",
            code="signature_expired",
        )
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(settings.telnyx_public_key))
        key.verify(raw_signature, stamp.encode() + b"|" + body)
    except (binascii.Error, ValueError, InvalidSignature):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the body") from None
    return signature


def event_type(event: Mapping[str, Any]) -> str:
    data = event.get("data")
    return str(data.get("event_type", "")) if isinstance(data, dict) else ""


def _payload(event: Mapping[str, Any]) -> dict[str, Any]:
    payload = event["data"]["payload"]
    if not isinstance(payload, dict):
        raise TypeError("payload is not an object")
    return payload


def status_report(event: Mapping[str, Any]) -> StatusReport:
    payload = _payload(event)
    recipients = payload.get("to") or [{}]
    raw = str(recipients[0].get("status", "")).lower()
    status = STATUS_MAP.get(raw)
    reason = None
    if status in ("failed", "undelivered"):
        errors = payload.get("errors") or [{}]
        code = errors[0].get("code") if isinstance(errors[0], dict) else None
        title = errors[0].get("title") if isinstance(errors[0], dict) else None
        reason = f"{CARRIER}:{code or raw} {title or raw}"
    return StatusReport(str(payload.get("id", "")), status, reason)


def inbound_event(event: Mapping[str, Any]) -> CarrierEvent:
    payload = _payload(event)
    recipients = payload.get("to") or [{}]
    media = payload.get("media") or []
    attachments = [
        {"url": m.get("url"), "contentType": m.get("content_type"), "size": m.get("size")}
        for m in media
        if isinstance(m, dict)
    ]
    sender = payload.get("from") or {}
    return carrier_event(
        CARRIER,
        {"messageId": f"{CARRIER}:{payload.get('id', '')}",
         "from": sender.get("phone_number", "") if isinstance(sender, dict) else "",
         "to": recipients[0].get("phone_number", "") if isinstance(recipients[0], dict) else "",
         "message": payload.get("text") or None, "attachments": attachments,
         "receivedAt": payload.get("received_at")},
    )  # fmt: skip
