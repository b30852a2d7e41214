"""The five carrier endpoints (HTTP): each checks the provider's proof of origin before anything is
parsed or stored, then records durably and answers fast (inbound messages take the generic
webhook's path: one conditional insert and one queue message; downloads happen later).

Refusals: 503 `carrier_not_configured` without the carrier's settings; 401 for a missing,
wrong or stale signature or credentials; 409 for a replayed Telnyx request.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from shared.app import App
from shared.carriers import bandwidth, telnyx, twilio
from shared.carriers.common import require_configured
from shared.errors import BadRequest, NotFound, PayloadTooLarge, ServiceError
from shared.http import json_response
from shared.inbound.event import MAX_EVENT_BYTES, CarrierEvent

log = logging.getLogger(__name__)


def _body(req: func.HttpRequest) -> bytes:
    body = req.get_body()
    if len(body) > MAX_EVENT_BYTES:
        raise PayloadTooLarge(
            f"The request is larger than {MAX_EVENT_BYTES} bytes.", code="event_too_large"
        )
    return body


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise BadRequest("The form is not UTF-8.", code="malformed_form") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("The body is not valid JSON.", code="malformed_json") from None


def receive_event(app: App, event: CarrierEvent) -> str:
    """The generic webhook's durable accept for a provider's inbound message: replays (the same
    provider message id) are recognised and not queued twice."""
    tenant_id = app.directory.number_owner(event.to)
    if tenant_id is None:
        raise NotFound(f"{event.to} is not provisioned here", code="number_not_provisioned")
    return app.intake.accept(tenant_id, event).message_id


def _status_body(status: str | None) -> dict[str, Any]:
    return {"status": status} if status else {"status": None, "known": False}


# Twilio


def _twilio_verified(req: func.HttpRequest, app: App) -> list[tuple[str, str]]:
    require_configured(app.settings, twilio.CARRIER)
    form = _form(_body(req))
    twilio.verify(app.settings, req.url, form, req.headers)
    return form


def twilio_inbound(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/carriers/twilio/inbound: answered with an empty TwiML document."""
    form = dict(reversed(_twilio_verified(req, app)))  # the first of repeated keys wins
    receive_event(app, twilio.inbound_event(form))
    return func.HttpResponse(twilio.EMPTY_TWIML, status_code=200, mimetype="text/xml",
                             charset="utf-8")  # fmt: skip


def twilio_status(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/carriers/twilio/status: the StatusCallback we passed with each message."""
    form = dict(reversed(_twilio_verified(req, app)))
    query = dict(parse_qsl(urlsplit(req.url).query))
    status = app.carrier_statuses.apply(twilio.CARRIER, twilio.status_report(form, query))
    return json_response(_status_body(status))


# Telnyx


def telnyx_events(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/carriers/telnyx/events: the messaging profile's webhook (and the
    `webhook_url` of each message we send)."""
    require_configured(app.settings, telnyx.CARRIER)
    body = _body(req)
    signature = telnyx.verify(app.settings, body, req.headers, now=time.time())
    event = _json(body)
    if not isinstance(event, dict):
        raise BadRequest("A Telnyx event is a JSON object.", code="malformed_event")
    kind = telnyx.event_type(event)
    if kind != telnyx.INBOUND_EVENT and kind not in telnyx.STATUS_EVENTS:
        return json_response({"ignored": kind})
    signed_at = int(req.headers["telnyx-timestamp"])  # verified above
    claim = app.carrier_statuses.replays.claim(telnyx.CARRIER, signature, signed_at)
    try:
        try:
            if kind == telnyx.INBOUND_EVENT:
                return json_response({"messageId": receive_event(app, telnyx.inbound_event(event))})
            report = telnyx.status_report(event)
        except (KeyError, TypeError, AttributeError, IndexError):
            raise BadRequest("The event lacks its payload.", code="malformed_event") from None
        return json_response(_status_body(app.carrier_statuses.apply(telnyx.CARRIER, report)))
    except BaseException:
        # Not recorded: the provider's retry of this very request must not look like a replay.
        with suppress(ServiceError):
            app.carrier_statuses.replays.release(claim)
        raise


# Bandwidth


def _bandwidth_callbacks(req: func.HttpRequest, app: App) -> list[dict[str, Any]]:
    require_configured(app.settings, bandwidth.CARRIER)
    bandwidth.verify(app.settings, req.headers)
    try:
        return bandwidth.callbacks(_json(_body(req)))
    except TypeError as exc:
        raise BadRequest(str(exc), code="malformed_callback") from None


def bandwidth_inbound(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/carriers/bandwidth/inbound: `message-received` callbacks (a JSON array). A
    message for a number not provisioned here is logged and skipped, not the whole batch."""
    accepted = []
    for callback in _bandwidth_callbacks(req, app):
        if callback.get("type") != bandwidth.INBOUND_TYPE:
            continue
        try:
            accepted.append(receive_event(app, bandwidth.inbound_event(callback)))
        except NotFound:
            log.warning("bandwidth inbound message for a number not provisioned here skipped")
    return json_response({"messageIds": accepted})


def bandwidth_status(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/carriers/bandwidth/status: `message-sending`, `-delivered`, `-failed`."""
    statuses = []
    for callback in _bandwidth_callbacks(req, app):
        sender = str(bandwidth.status_sender(callback))
        owner = app.directory.number_owner(sender) if sender else None
        report = bandwidth.status_report(callback, owner)
        statuses.append(app.carrier_statuses.apply(bandwidth.CARRIER, report))
    return json_response({"statuses": statuses})
