"""HTTP handlers for /api/v1/messages and the delivery queue's entry point."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import azure.functions as func

from shared.app import App
from shared.errors import NotFound, ValidationFailed
from shared.http import authenticate, json_response
from shared.inbound.view import inbound_message_view
from shared.messages.request import parse_send
from shared.messages.service import accept, acceptance_body, sender_tenant
from shared.messages.store import MessageStore
from shared.outbound import MAX_URL_LENGTH


def send(req: func.HttpRequest, app: App) -> func.HttpResponse:
    principal = authenticate(req, app)
    body = req.get_body()

    def produce(seed: str | None) -> func.HttpResponse:
        request = parse_send(
            body,
            max_recipients=app.settings.max_recipients,
            max_body=app.settings.max_body_characters,
        )
        if request.status_callback is not None:
            check_callback_url(app, request.status_callback)
        tenant_id = sender_tenant(app, principal.tenant_ids, request.from_)
        accepted = accept(app, tenant_id, request, seed or uuid.uuid4().hex)
        headers = {}
        if len(accepted.messages) == 1:
            headers["Location"] = f"/api/v1/messages/{accepted.messages[0].message_id}"
        return json_response(acceptance_body(accepted, request.body), 202, headers)

    scope = f"messages:{principal.email}"
    return app.idempotency.run(scope, req.headers.get("Idempotency-Key"), body, produce)


def check_callback_url(app: App, url: str) -> None:
    """What can be said of a status callback URL now; addresses are checked at every delivery."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = urlsplit("")
    loopback_http = (
        app.settings.outbound_allow_loopback
        and parts.scheme == "http"
        and parts.hostname in ("127.0.0.1", "localhost", "::1")
    )
    if (
        len(url) > MAX_URL_LENGTH
        or parts.username
        or parts.password
        or not parts.hostname
        or (parts.scheme != "https" and not loopback_http)
    ):
        raise ValidationFailed.field(
            "statusCallback", "must be an https URL without credentials, at most 2048 characters"
        )


def get_message(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """GET /api/v1/messages/{messageId}: an outbound or an inbound message of the caller's."""
    principal = authenticate(req, app)
    raw = req.route_params.get("messageId", "")
    try:
        message_id = str(uuid.UUID(raw))
    except ValueError:
        message_id = ""
    view = None
    if message_id:
        outbound = MessageStore(app.storage).find(principal.tenant_ids, message_id)
        view = outbound.to_api() if outbound else None
        view = view or inbound_message_view(app, principal.tenant_ids, message_id)
    if view is None:
        # Another tenant's message is indistinguishable from none at all.
        raise NotFound(f"message {raw} not found", code="message_not_found")
    return json_response(view)
