"""HTTP handlers for /api/v1/media: upload, read and delete."""

from __future__ import annotations

import re
from collections.abc import Callable

import azure.functions as func

from shared.app import App
from shared.auth import Principal
from shared.errors import Forbidden, NotFound
from shared.http import authenticate, json_response
from shared.media.store import MediaRecord
from shared.media.types import check_extension, normalise_declared
from shared.media.upload_form import FormUpload, is_form, parse_form, refuse_oversized
from shared.media.upload_request import UploadRequest, parse_upload

_MEDIA_ID = re.compile(r"^[0-9a-f]{32}$")


def upload(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/media: the guide's JSON body, or the same fields as `multipart/form-data`."""
    principal = authenticate(req, app)
    limit = app.settings.max_media_bytes
    content_type = req.headers.get("Content-Type")
    if is_form(content_type):
        refuse_oversized(req.headers.get("Content-Length"), limit)
        form = parse_form(req.get_body(), content_type, limit)
        return _store(req, app, principal, form.fingerprint, lambda: form)
    body = req.get_body()
    return _store(req, app, principal, body, lambda: parse_upload(body, limit))


def _store(
    req: func.HttpRequest,
    app: App,
    principal: Principal,
    fingerprint: bytes,
    parse: Callable[[], UploadRequest | FormUpload],
) -> func.HttpResponse:
    """One upload, however its body was sent: the same checks, the same 201, idempotent."""

    def produce(seed: str | None) -> func.HttpResponse:
        request = parse()
        principal.require_tenant(request.tenant_id)
        if app.directory.number_owner(request.phone_number) != request.tenant_id:
            raise Forbidden(
                f"{request.phone_number} is not provisioned for tenant {request.tenant_id}",
                code="number_not_provisioned",
            )
        declared = normalise_declared(request.declared_type)
        check_extension(request.file_name, declared)
        record = app.ingest.store(
            tenant_id=request.tenant_id,
            phone_number=request.phone_number,
            file_name=request.file_name,
            declared_type=declared,
            data=request.decode_data(app.settings.max_media_bytes),
            media_id=seed,
        )
        return json_response(upload_response(record), 201, {"Location": location(record)})

    scope = f"upload:{principal.email}"
    return app.idempotency.run(scope, req.headers.get("Idempotency-Key"), fingerprint, produce)


def upload_response(record: MediaRecord) -> dict[str, object]:
    body: dict[str, object] = {
        "uri": record.uri,
        "fileName": record.file_name,
        "mediaId": record.media_id,
        "contentType": record.content_type,
        "size": record.size,
        "sha256": record.sha256,
        "optimization": {"state": record.optimization_state},
    }
    if record.converted_from:
        body["convertedFrom"] = record.converted_from
    return body


def location(record: MediaRecord) -> str:
    return f"/api/v1/media/{record.media_id}"


def _owned_record(req: func.HttpRequest, app: App) -> MediaRecord:
    principal = authenticate(req, app)
    media_id = req.route_params.get("mediaId", "")
    record = app.media.get(principal.tenant_ids, media_id) if _MEDIA_ID.match(media_id) else None
    if record is None:
        # Another tenant's media is indistinguishable from none at all.
        raise NotFound(f"media {media_id} not found", code="media_not_found")
    return record


def media_item(req: func.HttpRequest, app: App) -> func.HttpResponse:
    record = _owned_record(req, app)
    if req.method.upper() == "DELETE":
        app.media.delete(record)
        return func.HttpResponse(status_code=204)
    return json_response(record.to_api())
