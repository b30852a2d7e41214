"""Which carrier a message goes out through: the one its `from` number is provisioned with.

`Carriers` holds one gateway per configured carrier, built on first use (no network at start-up),
and is the gateway the delivery worker is given: it routes each send, and records the provider's
message id in the index so status callbacks find the message with one read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import httpx

from shared.carriers.common import (
    PROVIDERS,
    CarrierLimits,
    carrier_limits,
    missing_settings,
    origin,
)
from shared.carriers.index import ProviderIndex
from shared.errors import ValidationFailed
from shared.messages.gateway import (
    CarrierGateway,
    CarrierReceipt,
    GatewayUnavailable,
    OutboundSms,
    SandboxDelivery,
    SandboxGateway,
    gateway_from_settings,
)
from shared.settings import Settings
from shared.tables import Table


class NumberCarriers(Protocol):
    """What routing needs of the tenant directory: the carrier a number is provisioned with."""

    def number_carrier(self, number: str) -> str | None: ...


class Carriers:
    def __init__(
        self,
        settings: Settings,
        numbers: NumberCarriers,
        index: ProviderIndex,
        sandbox: Table[SandboxDelivery],
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._numbers = numbers
        self.index = index
        self._sandbox = sandbox
        self._transport = transport  # tests may inject one; production uses the network
        self._gateways: dict[str, CarrierGateway] = {}
        self._lock = threading.Lock()

    def carrier_of(self, number: str) -> str:
        """The number's carrier. Numbers provisioned before carriers existed route as they did
        then: through the generic gateway when one is configured, else the sandbox."""
        carrier = self._numbers.number_carrier(number)
        if carrier is not None:
            return carrier
        return "generic" if self.settings.carrier_gateway_url else "sandbox"

    def limits_for(self, number: str) -> CarrierLimits:
        return carrier_limits(self.settings, self.carrier_of(number))

    def check_total(self, from_number: str, media: Sequence[tuple[int, bool]]) -> None:
        """400 `media_exceeds_carrier_limit` when a send's media, given as (size, ours), cannot
        fit the per-message total of the sending number's carrier. Our own media count at most
        the carrier's budget, which the optimiser brings them to before they go out."""
        carrier = self.carrier_of(from_number)
        limits = carrier_limits(self.settings, carrier)
        if limits.total_bytes is None or not media:
            return
        total = sum(min(size, limits.budget_bytes) if ours else size for size, ours in media)
        if total > limits.total_bytes:
            raise ValidationFailed.field(
                "mediaUrls",
                f"the media add up to {total} bytes; {carrier} carries at most "
                f"{limits.total_bytes} bytes per message",
                code="media_exceeds_carrier_limit",
            )

    def gateway(self, carrier: str) -> CarrierGateway:
        """The carrier's gateway; `GatewayUnavailable` while its settings are missing (a number
        moved to a carrier before the operator configured it: its messages wait and retry)."""
        if missing_settings(self.settings, carrier):
            raise GatewayUnavailable(f"the carrier {carrier} is not configured")
        with self._lock:
            if carrier not in self._gateways:
                self._gateways[carrier] = self._build(carrier)
            return self._gateways[carrier]

    def _build(self, carrier: str) -> CarrierGateway:
        builders: dict[str, Callable[[], CarrierGateway]] = {
            "sandbox": lambda: SandboxGateway(self._sandbox, self.settings.sandbox_fail_numbers),
            "generic": lambda: gateway_from_settings(self.settings, self._sandbox),
            "twilio": self._twilio,
            "telnyx": self._telnyx,
            "bandwidth": self._bandwidth,
        }
        return builders[carrier]()

    def _twilio(self) -> CarrierGateway:
        from shared.carriers.twilio import TwilioGateway

        return TwilioGateway(self.settings, self._transport)

    def _telnyx(self) -> CarrierGateway:
        from shared.carriers.telnyx import TelnyxGateway

        return TelnyxGateway(self.settings, self._transport)

    def _bandwidth(self) -> CarrierGateway:
        from shared.carriers.bandwidth import BandwidthGateway

        return BandwidthGateway(self.settings, self._transport)

    def send(self, sms: OutboundSms) -> CarrierReceipt:
        carrier = self.carrier_of(sms.from_number)
        receipt = self.gateway(carrier).send(sms)
        if carrier in PROVIDERS:
            self.index.remember(carrier, receipt.carrier_message_id, sms.tenant_id, sms.message_id)
        return receipt

    def media_credentials(self, carrier: str | None, url: str) -> dict[str, str] | None:
        """The headers that fetch an inbound attachment of `carrier` at `url`: only when the
        provider requires them and `url` is on that provider's own API origin (the download
        sends them to that origin only, never across a redirect)."""
        if carrier not in ("twilio", "bandwidth") or missing_settings(self.settings, carrier):
            return None
        try:
            target = origin(url)
        except (httpx.InvalidURL, TypeError):
            return None
        if carrier == "twilio":
            from shared.carriers import twilio

            if target == twilio.media_origin(self.settings):
                return twilio.media_credentials(self.settings)
            return None
        from shared.carriers import bandwidth

        gateway = self.gateway("bandwidth")
        if target == bandwidth.media_origin(self.settings) and isinstance(
            gateway, bandwidth.BandwidthGateway
        ):
            return {"Authorization": gateway.tokens.bearer()}
        return None
