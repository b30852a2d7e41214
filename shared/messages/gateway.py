"""Carrier gateways: where accepted messages go. Two real implementations behind one interface:
an HTTP gateway (signed JSON, timeouts, retries on 5xx/timeouts, 4xx final) and the sandbox used
locally by default, which records deliveries in Table Storage and marks them delivered."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import Field

from shared.settings import Settings
from shared.tables import JsonText, Row, Table

SANDBOX_TABLE = "sandboxdeliveries"


@dataclass(frozen=True)
class OutboundSms:
    message_id: str
    tenant_id: str
    from_number: str
    to: str
    body: str
    media_urls: list[str]


@dataclass(frozen=True)
class CarrierReceipt:
    """The carrier took the message: its id there."""

    carrier_message_id: str
    delivered: bool  # the gateway already knows the handset has it (the sandbox does)


class GatewayRejected(Exception):
    """Final: the carrier refused this message (4xx); retrying cannot help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GatewayUnavailable(Exception):
    """Transient: 5xx, 429 or a timeout after the in-process retries; try again later."""


class CarrierGateway(Protocol):
    def send(self, sms: OutboundSms) -> CarrierReceipt: ...


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class HttpGateway:
    """POST {url}/messages with `X-Gateway-Timestamp` and `X-Gateway-Signature:
    v1=hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`. `Idempotency-Key` is the message id, so
    a retry after a lost response is not a second message at the carrier."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        retries: tuple[float, ...] = (0.2, 0.6, 1.5),
    ) -> None:
        self._url = url.rstrip("/") + "/messages"
        self._secret = secret.encode()
        self._retries = retries
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=3.0), trust_env=False)

    def send(self, sms: OutboundSms) -> CarrierReceipt:
        body = json.dumps(
            {"messageId": sms.message_id, "from": sms.from_number, "to": sms.to,
             "body": sms.body, "mediaUrls": sms.media_urls},
            separators=(",", ":"),
        ).encode()  # fmt: skip
        for delay in (*self._retries, None):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Gateway-Timestamp": timestamp,
                "X-Gateway-Signature": sign(self._secret, timestamp, body),
                "Idempotency-Key": sms.message_id,
            }
            try:
                response = self._client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code < 300:
                payload: dict[str, Any] = response.json() if response.content else {}
                carrier_id = str(payload.get("carrierMessageId") or sms.message_id)
                return CarrierReceipt(carrier_id, delivered=payload.get("status") == "delivered")
            if (
                response is not None
                and 400 <= response.status_code < 500
                and response.status_code != 429
            ):
                raise GatewayRejected(_reason(response))
            if delay is None:
                break
            time.sleep(delay)
        raise GatewayUnavailable("the carrier gateway did not accept the message")


def _reason(response: httpx.Response) -> str:
    try:
        detail = response.json().get("reason")
    except ValueError:
        detail = None
    return str(detail or f"carrier_rejected_{response.status_code}")


class SandboxDelivery(Row):
    """What the sandbox carrier was handed (partition = tenant id, row = message id)."""

    from_number: str = Field(alias="From")
    to: str
    body: str
    media_urls: JsonText[list[str]] = Field(default_factory=list)


class SandboxGateway:
    """Local stand-in for a carrier: records each message once and reports it delivered; numbers
    in `fail_numbers` are rejected, so tests can exercise failures."""

    def __init__(self, table: Table[SandboxDelivery], fail_numbers: tuple[str, ...] = ()) -> None:
        self._table = table
        self._fail = frozenset(fail_numbers)

    def send(self, sms: OutboundSms) -> CarrierReceipt:
        if sms.to in self._fail:
            raise GatewayRejected("sandbox_rejected")
        self._table.upsert(
            SandboxDelivery(partition_key=sms.tenant_id, row_key=sms.message_id,
                            from_number=sms.from_number, to=sms.to, body=sms.body,
                            media_urls=sms.media_urls)
        )  # fmt: skip
        return CarrierReceipt(f"sandbox-{sms.message_id}", delivered=True)


def gateway_from_settings(settings: Settings, sandbox: Table[SandboxDelivery]) -> CarrierGateway:
    if settings.carrier_gateway_url and settings.carrier_gateway_secret:
        return HttpGateway(
            settings.carrier_gateway_url, settings.carrier_gateway_secret.get_secret_value()
        )
    return SandboxGateway(sandbox, settings.sandbox_fail_numbers)
