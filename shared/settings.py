"""The one settings object: read from the environment (Azure app settings, or `local.settings.json`
values loaded by the host), validated once at start-up, then passed in explicitly."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigurationError

MIB = 1024 * 1024
STORAGE_SOURCES = frozenset({"media_storage_connection_string", "media_storage_account_name"})
QUEUE_NAME = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
# Queue visibility delays are capped at 7 days by Azure Storage.
RetryDelay = Annotated[int, Field(ge=0, le=7 * 24 * 3600)]
CarrierName = Literal["sandbox", "generic", "twilio", "telnyx", "bandwidth"]
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# Settings holding a URL of ours or of a provider's API (docs/carriers.md): https, or plain http
# to loopback so that tests and staging can point them at local fakes.
_BASE_URL_SETTINGS = (
    "public_base_url", "twilio_api_base_url", "telnyx_api_base_url", "bandwidth_api_base_url",
    "bandwidth_oauth_url",
)  # fmt: skip

# App Service passes a Key Vault reference it cannot resolve (missing secret, role not yet
# granted) through as its literal text, which names only the vault: never a usable secret.
KEY_VAULT_REFERENCE = "@microsoft.keyvault("
# Keys that sign or verify (HMAC secrets, the SAS-signing account key) must be at least this long;
# a connection string is secret too, but its length says nothing about its strength.
MIN_SECRET_BYTES = 32
NOT_A_KEY = frozenset({"media_storage_connection_string"})

log = logging.getLogger(__name__)


def secret_problem(name: str, value: str) -> str | None:
    """Why the value of secret setting `name` cannot be used, or None when it can."""
    if value.strip().lower().startswith(KEY_VAULT_REFERENCE):
        return "is an unresolved Key Vault reference (App Service could not read the secret)"
    if name not in NOT_A_KEY and len(value.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # Media storage. Locally a connection string (Azurite); in Azure an account name reached by
    # managed identity plus the account key (from Key Vault) that signs the long-lived SAS URLs.
    media_storage_connection_string: SecretStr | None = None
    media_storage_account_name: str | None = None
    media_storage_account_key: SecretStr | None = None
    media_storage_blob_endpoint: str | None = None
    managed_identity_client_id: str | None = None

    media_container: str = "attachments"
    originals_container: str = "originals"
    sas_policy_id: str = Field(default="media-read-v1", min_length=1, max_length=64)
    sas_validity_days: int = Field(default=99 * 365 + 24, gt=0)  # 99 years, leap days included
    max_media_bytes: int = Field(default=5 * MIB, gt=0)
    # Upload sessions (shared/media/staging.py): the private container clients PUT files to
    # (must equal the path of receive_upload/function.json), how long an upload URL is valid,
    # and how long POST .../complete waits for the file's check.
    staging_container: str = "uploads"
    upload_session_seconds: int = Field(default=15 * 60, gt=0, le=7 * 24 * 3600)
    upload_complete_wait_seconds: float = Field(default=20.0, ge=0, le=120)
    carrier_budget_bytes: int = Field(default=1 * MIB, gt=0)
    max_image_side: int = Field(default=1024, gt=0)

    # Sending: the carrier gateway (the sandbox when no URL is set), fan-out and delivery retries.
    carrier_gateway_url: str | None = None
    carrier_gateway_secret: SecretStr | None = None
    # At most 100: a send's records are written in one atomic entity-group transaction.
    max_recipients: int = Field(default=100, ge=1, le=100)
    max_body_characters: int = Field(default=1600, ge=1)
    sandbox_fail_numbers: tuple[str, ...] = ()
    delivery_retry_seconds: tuple[int, ...] = (10, 30, 120, 600, 1800)
    media_hold_seconds: int = Field(default=15, ge=0)
    media_hold_max_attempts: int = Field(default=40, ge=0)
    # How long a delivery worker holds an attempt before another job may take it over as left by
    # a dead worker (shared/messages/service.py). Longer than the gateway's worst case (4 tries of
    # a 3 s connect and 10 s read timeout, plus pauses: under a minute), so a live worker is never
    # overtaken. In Azure a dead worker's queue message comes back only after the host's 10-minute
    # visibility lease, by when 120 s have long passed; local crash tests that shorten the queue
    # lease (`tools.localhost --queue-lease`) shorten this too, so a takeover comes within seconds.
    delivery_claim_lease_seconds: int = Field(default=120, ge=1)

    # HTTP requests one instance runs at once: host.json `extensions.http.maxConcurrentRequests`
    # (keep the two equal); the storage clients keep this many connections per service.
    max_concurrent_requests: int = Field(default=100, ge=1)

    auth_cache_seconds: float = Field(default=300.0, ge=0)
    # Failed-login throttling (shared by all instances): failures allowed per window, by key.
    login_failures_per_user_address: int = Field(default=10, ge=1)
    login_failures_per_address: int = Field(default=50, ge=1)
    login_failures_per_user: int = Field(default=100, ge=1)
    login_throttle_window_seconds: float = Field(default=300.0, gt=0)
    # Outbound-fetch guard: loopback is refused unless explicitly allowed (tests only).
    outbound_allow_loopback: bool = False

    # Receiving (docs/webhooks.md): the carrier's HMAC-signed inbound webhook, and the signed
    # customer webhooks with their retry schedule (seconds before retry n; 8 tries over ~27 h).
    carrier_webhook_secret: SecretStr | None = None
    carrier_signature_tolerance_seconds: int = Field(default=300, gt=0)
    # Must equal the queueName in process_inbound/ and deliver_webhook/function.json; tests
    # point them elsewhere to drive the functions without the host's trigger runner.
    inbound_queue: str = Field(default="inbound-events", pattern=QUEUE_NAME)
    webhook_queue: str = Field(default="webhooks", pattern=QUEUE_NAME)
    webhook_retry_schedule_seconds: tuple[RetryDelay, ...] = (
        5, 300, 1800, 7200, 18000, 36000, 36000
    )  # fmt: skip
    webhook_retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    # A recorded inbound event still unprocessed this long after it arrived is queued again when
    # the carrier replays it (recovers an enqueue lost to a crash between record and queue).
    inbound_requeue_after_seconds: int = Field(default=15, gt=0)
    # A recorded inbound event whose processing has not finished this long after it was queued
    # is queued again by the recover_inbound timer (a lost queue message), without the carrier.
    inbound_recover_after_seconds: int = Field(default=120, gt=0)

    _refused_secrets: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_unusable_secrets(
        cls, data: Any, handler: ModelWrapValidatorHandler[Settings]
    ) -> Settings:
        """A secret that is an unresolved Key Vault reference or too short is treated as unset,
        so whatever needs it stays off (503) instead of verifying forgeable signatures."""
        refused: dict[str, str] = {}
        if isinstance(data, dict):
            data = dict(data)
            for name in secret_settings():
                value = data.get(name)
                text = value.get_secret_value() if isinstance(value, SecretStr) else value
                problem = secret_problem(name, text) if isinstance(text, str) else None
                if problem is not None:
                    refused[name.upper()] = problem
                    data[name] = None
            if "CARRIER_GATEWAY_SECRET" in refused and data.get("carrier_gateway_url"):
                # As when it is unset: sending through the gateway cannot work at all.
                problem = refused["CARRIER_GATEWAY_SECRET"]
                raise ValueError(f"CARRIER_GATEWAY_SECRET {problem}; CARRIER_GATEWAY_URL needs it")
        settings = handler(data)
        settings._refused_secrets = refused
        return settings

    @property
    def refused_secrets(self) -> Mapping[str, str]:
        """Secret settings that were set but refused, by setting name, with the reason."""
        return MappingProxyType(self._refused_secrets)

    # Real carriers (docs/carriers.md). Each number is provisioned with one; DEFAULT_CARRIER is
    # what `number-provision` uses when none is named. PUBLIC_BASE_URL is this app's external
    # https origin: callback URLs and Twilio signatures are computed from it, never from the
    # request's own idea of its host.
    default_carrier: CarrierName = "sandbox"
    public_base_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    telnyx_api_key: SecretStr | None = None
    telnyx_public_key: str | None = None  # base64 Ed25519 public key: not a secret
    telnyx_messaging_profile_id: str | None = None
    telnyx_api_base_url: str = "https://api.telnyx.com"
    bandwidth_account_id: str | None = None
    bandwidth_application_id: str | None = None
    bandwidth_client_id: str | None = None
    bandwidth_client_secret: SecretStr | None = None
    bandwidth_callback_username: str | None = None
    bandwidth_callback_password: SecretStr | None = None
    bandwidth_api_base_url: str = "https://messaging.bandwidth.com"
    bandwidth_oauth_url: str = "https://id.bandwidth.com/api/v1/oauth2/token"

    @model_validator(mode="after")
    def _carrier_urls(self) -> Settings:
        for name in _BASE_URL_SETTINGS:
            value = getattr(self, name)
            if value is None:
                continue
            parts = urlparse(value)
            loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
            if not (parts.scheme == "https" or loopback) or not parts.hostname:
                raise ValueError(f"{name.upper()} must be an https URL (plain http: loopback only)")
            if parts.username or parts.password or parts.query or parts.fragment:
                raise ValueError(f"{name.upper()} must not carry credentials, query or fragment")
        if self.public_base_url and urlparse(self.public_base_url).path not in ("", "/"):
            raise ValueError("PUBLIC_BASE_URL is an origin such as https://host, without a path")
        return self

    @model_validator(mode="after")
    def _one_storage_source(self) -> Settings:
        if self.media_storage_connection_string is None and self.media_storage_account_name is None:
            raise ValueError(
                "set MEDIA_STORAGE_CONNECTION_STRING (local) or MEDIA_STORAGE_ACCOUNT_NAME (Azure)"
            )
        if self.carrier_gateway_url and self.carrier_gateway_secret is None:
            raise ValueError("CARRIER_GATEWAY_URL needs CARRIER_GATEWAY_SECRET to sign requests")
        return self

    @property
    def storage_is_emulator(self) -> bool:
        """True when storage is the local emulator: only then may the demo account be seeded."""
        if self.media_storage_connection_string is None:
            return False
        parts = parse_connection_string(self.media_storage_connection_string.get_secret_value())
        if parts.get("UseDevelopmentStorage", "").lower() == "true":
            return True
        endpoint = parts.get("BlobEndpoint", "")
        host = urlparse(endpoint).hostname or ""
        return parts.get("AccountName") == "devstoreaccount1" and host in ("127.0.0.1", "localhost")


def secret_settings() -> tuple[str, ...]:
    """Every secret-bearing setting (declared as SecretStr): each is checked by `secret_problem`."""
    return tuple(
        name
        for name, info in Settings.model_fields.items()
        if SecretStr in getattr(info.annotation, "__args__", (info.annotation,))
    )


def parse_connection_string(value: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in value.split(";") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}


def local_settings_values(path: Path) -> dict[str, str]:
    """The `Values` of a `local.settings.json` (as `func start` reads them) that the environment
    does not already set: the environment wins, as it does under the Functions host."""
    if not path.is_file():
        return {}
    values = json.loads(path.read_text()).get("Values", {})
    fields = Settings.model_fields
    env = {k.lower() for k in os.environ}
    chosen = {
        k.lower(): str(v) for k, v in values.items() if k.lower() in fields and k.lower() not in env
    }
    if env & STORAGE_SOURCES:
        # The environment names the storage (e.g. Azure for the admin CLI): the file's emulator
        # connection string must not win over an account name, or the other way round.
        chosen = {k: v for k, v in chosen.items() if k not in STORAGE_SOURCES}
    return chosen


def load_settings(local_file: Path | None = None, **overrides: object) -> Settings:
    """Build settings from the environment (and, for development tools, a local.settings.json),
    turning validation errors into one clear message that names each bad setting."""
    values: dict[str, object] = {**(local_settings_values(local_file) if local_file else {})}
    values.update(overrides)
    try:
        settings = Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
    for name, problem in settings.refused_secrets.items():
        log.error(
            "configuration error: %s %s; it is treated as unset, so what needs it answers 503",
            name,
            problem,
        )
    return settings
