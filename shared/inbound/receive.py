"""POST /api/v1/webhooks/inbound: verify the carrier's signature, validate, record, queue, 200.

Nothing slow happens here (no downloads): the carrier gets its answer after one number lookup,
one conditional insert and one queue message.
"""

from __future__ import annotations

import time

import azure.functions as func

from shared.app import App
from shared.errors import NotConfigured, NotFound, PayloadTooLarge
from shared.http import json_response
from shared.inbound.event import MAX_EVENT_BYTES, parse_event
from shared.inbound.signature import verify_carrier_signature


def receive(req: func.HttpRequest, app: App) -> func.HttpResponse:
    secret = app.settings.carrier_webhook_secret
    if secret is None:
        # Never accept unsigned events: without a secret the endpoint is off, loudly.
        raise NotConfigured("The inbound webhook is not configured.", code="inbound_not_configured")
    body = req.get_body()
    if len(body) > MAX_EVENT_BYTES:
        raise PayloadTooLarge(
            f"The event is larger than {MAX_EVENT_BYTES} bytes.", code="event_too_large"
        )
    verify_carrier_signature(
        secret.get_secret_value(),
        req.headers,
        body,
        now=time.time(),
        tolerance=app.settings.carrier_signature_tolerance_seconds,
    )
    event = parse_event(body)
    tenant_id = app.directory.number_owner(event.to)
    if tenant_id is None:
        raise NotFound(f"{event.to} is not provisioned here", code="number_not_provisioned")
    receipt = app.intake.accept(tenant_id, event)
    return json_response({"messageId": receipt.message_id, "duplicate": receipt.duplicate})
