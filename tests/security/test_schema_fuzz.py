"""Property-based fuzzing of every operation in openapi.yaml against the local host: no 5xx, and
every response (status, content type, headers, body) conforms to the schema.

Bounded for `make test` (a few examples per operation, derandomized, so runs repeat). A longer
run: `FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/security/test_schema_fuzz.py`.
Outbound fetches (send `mediaUrls`, inbound attachments) never leave the machine: any host name
but loopback fails to resolve during this test."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Err

from shared.app import App
from tests.carrier_fakes import TelnyxSigner, carrier_settings
from tests.conftest import TenantAccount, app_with
from tests.webhook_peers import CARRIER_SECRET

pytestmark = pytest.mark.e2e

OPENAPI = Path(__file__).resolve().parents[2] / "openapi.yaml"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
SCHEMA_CHECK = checks.response_schema_conformance
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    SCHEMA_CHECK,
]


def _loopback_only(real: Any) -> Any:
    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            if name != "localhost":
                raise socket.gaierror(socket.EAI_NONAME, "no network in tests") from None
        return real(host, *args, **kwargs)

    return resolve


def _load() -> tuple[Any, list[Any]]:
    """The schema and its operation labels; a missing or unreadable file skips the test."""
    if not OPENAPI.is_file():
        return None, [pytest.param(None, marks=pytest.mark.skip(reason="no openapi.yaml yet"))]
    try:
        loaded = schemathesis.openapi.from_path(OPENAPI)
        labels = []
        for operation in loaded.get_all_operations():
            if isinstance(operation, Err):
                raise operation.err()
            labels.append(operation.ok().label)
    except Exception as exc:  # noqa: BLE001 - an invalid document is reported, not crashed on
        reason = f"openapi.yaml is not valid: {exc}"
        return None, [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    return loaded, labels


SCHEMA, LABELS = _load()


@pytest.fixture
def carrier_configured(app: App, base_url: str) -> Iterator[App]:
    """The carrier endpoints answer 503 by design while their settings are missing: set them
    (the providers' APIs are never called: no fuzzed request passes their checks)."""
    providers = carrier_settings(
        base_url, twilio="https://api.twilio.com", telnyx="https://api.telnyx.com",
        telnyx_public_key=TelnyxSigner().public_key, bandwidth="https://messaging.bandwidth.com",
    )  # fmt: skip
    with app_with(app, carrier_webhook_secret=CARRIER_SECRET, **providers) as configured:
        yield configured


@pytest.mark.parametrize("label", LABELS)
def test_every_operation_conforms_and_never_answers_5xx(
    label: str, base_url: str, account: TenantAccount, carrier_configured: App,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only(socket.getaddrinfo))
    operation = SCHEMA.find_operation_by_label(label)
    # The document describes itself as a YAML string, which schemathesis parses into an object
    # before validating: body conformance cannot be judged for this one operation.
    chosen = [c for c in CHECKS if label != "GET /openapi.yaml" or c is not SCHEMA_CHECK]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(
            base_url=f"{base_url}/api", checks=chosen, auth=account.auth, timeout=30
        )

    fuzz()
