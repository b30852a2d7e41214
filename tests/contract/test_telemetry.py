"""OpenTelemetry export is configured only when Application Insights is named, once per
process, with the managed identity where one is set; never at import, never in tests."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential
from azure.monitor import opentelemetry as azure_monitor
from opentelemetry import metrics, trace

from shared.telemetry import CONNECTION_STRING, TelemetrySetup, configure_telemetry
from tests.contract.conftest import ROOT

DUMMY = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://ingest.invalid/"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records what would be configured; nothing is exported and no network is reached."""
    recorded: list[dict[str, Any]] = []
    monkeypatch.setattr(azure_monitor, "configure_azure_monitor", lambda **kw: recorded.append(kw))
    return recorded


def test_without_a_connection_string_nothing_is_configured(calls: list[dict[str, Any]]) -> None:
    tracer_provider, meter_provider = trace.get_tracer_provider(), metrics.get_meter_provider()
    setup = TelemetrySetup()
    assert setup.configure({}) is False
    assert setup.configure({CONNECTION_STRING: "  "}) is False
    assert configure_telemetry({"MANAGED_IDENTITY_CLIENT_ID": "id"}) is False
    assert calls == [] and not setup.configured
    assert trace.get_tracer_provider() is tracer_provider
    assert metrics.get_meter_provider() is meter_provider


def test_a_connection_string_configures_azure_monitor_once(calls: list[dict[str, Any]]) -> None:
    setup = TelemetrySetup()
    assert setup.configure({CONNECTION_STRING: DUMMY}) is True
    assert setup.configure({CONNECTION_STRING: DUMMY}) is True
    assert calls == [{"connection_string": DUMMY, "disable_logging": True}]


def test_the_managed_identity_signs_in_when_named(calls: list[dict[str, Any]]) -> None:
    client_id = "11111111-2222-3333-4444-555555555555"
    setup = TelemetrySetup()
    setup.configure({CONNECTION_STRING: DUMMY, "MANAGED_IDENTITY_CLIENT_ID": client_id})
    [options] = calls
    assert isinstance(options["credential"], ManagedIdentityCredential)


def test_importing_the_app_configures_nothing() -> None:
    probe = (
        "import sys, shared.telemetry, shared.http, shared.logs, logging; "
        "from opentelemetry import trace; "
        "print('azure.monitor.opentelemetry' in sys.modules, "
        "type(trace.get_tracer_provider()).__name__, "
        "logging.getLogRecordFactory() is logging.LogRecord)"
    )
    env = {CONNECTION_STRING: DUMMY, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()  # fmt: skip
    assert out == ["False", "ProxyTracerProvider", "True"]
