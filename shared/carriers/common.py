"""What every carrier has in common: the names, which settings each needs, the media limits
that follow the carrier of the sending number, and the HTTP session that talks to a provider's
API (timeouts, in-process retries, and the translation of answers into gateway outcomes)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

import httpx

from shared.errors import NotConfigured, ValidationFailed
from shared.messages.gateway import GatewayRejected, GatewayUnavailable
from shared.settings import CarrierName, Settings

CARRIERS: tuple[str, ...] = get_args(CarrierName)
PROVIDERS = ("twilio", "telnyx", "bandwidth")
KB, MB = 1000, 1000 * 1000
_MAX_REASON = 300
log = logging.getLogger(__name__)

# The settings each carrier cannot work without (docs/carriers.md).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "sandbox": (),
    "generic": ("carrier_gateway_url", "carrier_gateway_secret"),
    "twilio": ("public_base_url", "twilio_account_sid", "twilio_auth_token"),
    "telnyx": ("public_base_url", "telnyx_api_key", "telnyx_public_key"),
    "bandwidth": (
        "bandwidth_account_id", "bandwidth_application_id", "bandwidth_client_id",
        "bandwidth_client_secret", "bandwidth_callback_username", "bandwidth_callback_password",
    ),
}  # fmt: skip


def require_carrier_name(value: str) -> str:
    name = value.strip().lower()
    if name not in CARRIERS:
        raise ValidationFailed.field("carrier", f"must be one of {', '.join(CARRIERS)}")
    return name


def missing_settings(settings: Settings, carrier: str) -> list[str]:
    """The settings `carrier` needs that are not set, upper-cased as the operator sets them."""
    return [name.upper() for name in _REQUIRED[carrier] if not getattr(settings, name)]


def require_configured(settings: Settings, carrier: str) -> None:
    """503 `carrier_not_configured` naming what is missing (an endpoint's answer; the admin CLI
    prints it as an error when a number is provisioned for such a carrier)."""
    missing = missing_settings(settings, carrier)
    if missing:
        raise NotConfigured(
            f"The carrier {carrier} is not configured: set {', '.join(missing)}.",
            code="carrier_not_configured",
        )


@dataclass(frozen=True)
class CarrierLimits:
    """`budget_bytes`: what the optimiser shrinks each medium to for this carrier; `total_bytes`:
    the most one message's media may add up to (None: no limit of ours). Sources in
    docs/carriers.md."""

    budget_bytes: int
    total_bytes: int | None


def carrier_limits(settings: Settings, carrier: str) -> CarrierLimits:
    own = settings.carrier_budget_bytes
    return {
        "twilio": CarrierLimits(min(own, 1 * MB), 5 * MB),
        "telnyx": CarrierLimits(min(own, 600 * KB), 1 * MB),
        "bandwidth": CarrierLimits(min(own, 500 * KB), 500 * KB),
    }.get(carrier, CarrierLimits(own, None))


@dataclass(frozen=True)
class ProviderAnswer:
    status: int
    body: Any  # parsed JSON, or None


class ProviderSession:
    """One provider API: requests with a bounded time, retried in-process on 429, 5xx and
    transport errors; a final 4xx becomes `GatewayRejected` naming the carrier and the
    provider's code, anything still failing `GatewayUnavailable`. The base URL comes from the
    settings (validated there), never from traffic, so this client needs no SSRF guard."""

    def __init__(
        self,
        carrier: str,
        base_url: str,
        *,
        timeout: float = 10.0,
        retries: tuple[float, ...] = (0.2, 0.6),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.carrier = carrier
        self.base_url = base_url.rstrip("/")
        self._retries = retries
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=3.0), trust_env=False, transport=transport,
            follow_redirects=False,
        )  # fmt: skip

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Callable[[], Mapping[str, str]],
        rejection: Callable[[ProviderAnswer], str],
        **kwargs: Any,
    ) -> ProviderAnswer:
        """`headers` is called per try (a token may be renewed in between); `rejection` turns a
        final 4xx answer into the failure reason kept on the message."""
        url = self.base_url + path
        for delay in (*self._retries, None):
            try:
                response = self.client.request(method, url, headers=headers(), **kwargs)
            except httpx.HTTPError as exc:
                log.warning("%s API unreachable: %s", self.carrier, type(exc).__name__)
                response = None
            if response is not None:
                answer = ProviderAnswer(response.status_code, _json(response))
                if response.status_code < 300:
                    return answer
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    reason = f"{self.carrier}:{rejection(answer)}"[:_MAX_REASON]
                    raise GatewayRejected(reason)
            if delay is None:
                break
            time.sleep(delay)
        raise GatewayUnavailable(f"the {self.carrier} API did not accept the message")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, default ports filled in: what "the same host" means when
    deciding whether credentials may go to a URL."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, parsed.host.lower(), port


@dataclass(frozen=True)
class StatusReport:
    """A provider's word on one message we sent, mapped onto our statuses (None: nothing to
    record, e.g. a status that says less than we already know). `reference` is our own
    (tenant, message) when the provider echoes it back, used when the index has no row yet."""

    provider_id: str
    status: str | None
    reason: str | None = None
    reference: tuple[str, str] | None = None
