"""OpenTelemetry export to Application Insights, switched on only where the host names a
connection string (Azure); elsewhere nothing is configured and nothing leaves the process.

Traces and metrics (HTTP clients, the Azure SDK) go through the Azure Monitor distro. Log lines
are not exported from here: the Functions host already sends every line of the worker, with its
invocation id, to the same Application Insights, and exporting them twice would double them.
Application Insights has local authentication off, so the exporter signs in as the app's
user-assigned managed identity when `MANAGED_IDENTITY_CLIENT_ID` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
MANAGED_IDENTITY_CLIENT_ID = "MANAGED_IDENTITY_CLIENT_ID"


class TelemetrySetup:
    """Configures the exporter at most once for the process that owns this object."""

    def __init__(self) -> None:
        self._configured = False
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return self._configured

    def configure(self, environ: Mapping[str, str]) -> bool:
        """True when export is on (configured now or by an earlier call); False when the
        environment names no connection string, in which case nothing is touched."""
        connection_string = (environ.get(CONNECTION_STRING) or "").strip()
        if not connection_string:
            return False
        with self._lock:
            if self._configured:
                return True
            # Imported here: the distro is heavy and must not load where it is not used.
            from azure.monitor import opentelemetry as azure_monitor

            options: dict[str, Any] = {
                "connection_string": connection_string,
                "disable_logging": True,
            }
            client_id = (environ.get(MANAGED_IDENTITY_CLIENT_ID) or "").strip()
            if client_id:
                from azure.identity import ManagedIdentityCredential

                options["credential"] = ManagedIdentityCredential(client_id=client_id)
            azure_monitor.configure_azure_monitor(**options)
            self._configured = True
            return True


_process = TelemetrySetup()


def configure_telemetry(environ: Mapping[str, str]) -> bool:
    """Once per process, before the first invocation's work (see `shared.app.current`)."""
    return _process.configure(environ)
