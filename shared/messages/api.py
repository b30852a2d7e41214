"""HTTP handlers for /api/v1/messages and the delivery queue's entry point."""

from __future__ import annotations

import azure.functions as func

from shared.app import App
from shared.http import authenticate, json_response
from shared.messages.request import parse_send
from shared.messages.service import accept, acceptance_body, sender_tenant


def send(req: func.HttpRequest, app: App) -> func.HttpResponse:
    principal = authenticate(req, app)
    body = req.get_body()

    def produce() -> func.HttpResponse:
        request = parse_send(
            body,
            max_recipients=app.settings.max_recipients,
            max_body=app.settings.max_body_characters,
        )
        tenant_id = sender_tenant(app, principal.tenant_ids, request.from_)
        accepted = accept(app, tenant_id, request)
        headers = {}
        if len(accepted.messages) == 1:
            headers["Location"] = f"/api/v1/messages/{accepted.messages[0].message_id}"
        return json_response(acceptance_body(accepted, request.body), 202, headers)

    scope = f"messages:{principal.email}"
    return app.idempotency.run(scope, req.headers.get("Idempotency-Key"), body, produce)
