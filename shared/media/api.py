"""HTTP handlers for /api/v1/media: upload (JSON or multipart), upload sessions (the file PUT
straight to storage), read and delete."""

from __future__ import annotations

import hashlib
import re
import time
from typing import TYPE_CHECKING

import azure.functions as func

from shared.app import App
from shared.auth import Principal
from shared.clock import rfc3339
from shared.errors import Conflict, Forbidden, NotFound, ServiceError
from shared.http import authenticate, json_response, problem_of
from shared.media.sessions import READY, REJECTED, UploadSession
from shared.media.staging import REQUIRED_HEADERS
from shared.media.store import MediaRecord
from shared.media.types import check_extension, normalise_declared
from shared.media.upload_request import UploadRequest, parse_session_request, parse_upload
from shared.overlap import beside

if TYPE_CHECKING:
    from shared.media.upload_form import FormUpload

_MEDIA_ID = re.compile(r"^[0-9a-f]{32}$")
_COMPLETE_POLL_SECONDS = 0.2


def upload(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/media: the guide's JSON body, or the same fields as `multipart/form-data`.

    Independent work overlaps: the caller's credentials, then the number's owner, are read while
    the body is parsed, decoded and hashed. Refusals keep their order all the same: 401 (or
    429), the tenant's and the number's 403, then what is wrong with the file; all of them come
    before an Idempotency-Key is claimed, so none uses one up.
    """
    limit = app.settings.max_media_bytes
    caller = beside(authenticate, req, app)
    try:
        request, fingerprint = _parse_body(req, limit)
    except ServiceError:
        caller.result()
        raise
    owner = beside(app.directory.number_owner, request.phone_number)

    def authorised() -> Principal:
        principal = caller.result()
        principal.require_tenant(request.tenant_id)
        _require_owner(owner.result(), request.phone_number, request.tenant_id)
        return principal

    try:
        declared = normalise_declared(request.declared_type)
        check_extension(request.file_name, declared)
        data = request.decode_data(limit)
    except ServiceError:
        authorised()
        raise
    digest = beside(_sha256, data) if request.sha256 is None else None
    principal = authorised()

    def produce(seed: str | None) -> func.HttpResponse:
        record = app.ingest.store(
            tenant_id=request.tenant_id,
            phone_number=request.phone_number,
            file_name=request.file_name,
            declared_type=declared,
            data=data,
            media_id=seed,
            budget_bytes=app.carriers.limits_for(request.phone_number).budget_bytes,
            sha256=request.sha256 if digest is None else digest.result(),
        )
        return json_response(upload_response(record), 201, {"Location": location(record)})

    scope = f"upload:{principal.email}"
    return app.idempotency.run(scope, req.headers.get("Idempotency-Key"), fingerprint, produce)


def _parse_body(req: func.HttpRequest, limit: int) -> tuple[UploadRequest | FormUpload, bytes]:
    """The upload's fields (the file not decoded yet, for JSON) and what an Idempotency-Key is
    bound to."""
    content_type = req.headers.get("Content-Type")
    if (content_type or "").split(";", 1)[0].strip().lower() == "multipart/form-data":
        # Imported here: the multipart parser is not needed by JSON uploads.
        from shared.media.upload_form import parse_form, refuse_oversized

        refuse_oversized(req.headers.get("Content-Length"), limit)
        form = parse_form(req.get_body(), content_type, limit)
        return form, form.fingerprint
    body = req.get_body()
    return parse_upload(body, limit), body


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


def media_item(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """GET: the record (`state: ready`), or the upload session still `uploading` or `rejected`
    (with its problem); DELETE: the blob and its record."""
    principal = authenticate(req, app)
    media_id = req.route_params.get("mediaId", "")
    record = app.media.get(principal.tenant_ids, media_id) if _MEDIA_ID.match(media_id) else None
    if record is not None:
        if req.method.upper() == "DELETE":
            app.media.delete(record)
            return func.HttpResponse(status_code=204)
        return json_response({**record.to_api(), "state": READY})
    session = _live_session(app, principal, media_id)
    if session is None or req.method.upper() == "DELETE":
        raise _not_found(media_id)
    body = session.to_api()
    if session.state == REJECTED:
        body["problem"] = problem_of(session.rejection())
    return json_response(body)


def open_upload(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/media/uploads: a session and its write-once URL for one file."""
    principal = authenticate(req, app)
    body = req.get_body()

    def produce(seed: str | None) -> func.HttpResponse:
        request = parse_session_request(body)
        principal.require_tenant(request.tenant_id)
        _require_number(app, request.phone_number, request.tenant_id)
        declared = normalise_declared(request.declared_type)
        check_extension(request.file_name, declared)
        session, url = app.staging.open(
            tenant_id=request.tenant_id,
            phone_number=request.phone_number,
            file_name=request.file_name,
            declared_type=declared,
            media_id=seed,
        )
        answer = {
            "mediaId": session.media_id,
            "uploadUrl": url,
            "expiresAt": rfc3339(session.expires_at),
            "requiredHeaders": REQUIRED_HEADERS,
        }
        return json_response(answer, 201, {"Location": f"/api/v1/media/{session.media_id}"})

    scope = f"upload-session:{principal.email}"
    return app.idempotency.run(scope, req.headers.get("Idempotency-Key"), body, produce)


def complete_upload(req: func.HttpRequest, app: App) -> func.HttpResponse:
    """POST /api/v1/media/uploads/{mediaId}/complete: wait (bounded) for the file's check, then
    the upload's 201, or the problem it was refused with."""
    principal = authenticate(req, app)
    media_id = req.route_params.get("mediaId", "")
    deadline = time.monotonic() + app.settings.upload_complete_wait_seconds
    while True:
        session = _live_session(app, principal, media_id)
        if session is None:
            raise _not_found(media_id)
        if session.state == READY:
            record = app.media.get({session.tenant_id}, media_id)
            if record is None:  # deleted since
                raise _not_found(media_id)
            return json_response(upload_response(record), 201, {"Location": location(record)})
        if session.state == REJECTED:
            raise session.rejection()
        if time.monotonic() >= deadline:
            raise Conflict(
                "The file has not arrived at uploadUrl yet, or is still being checked; "
                "PUT it there, then call complete again.",
                code="upload_pending",
                headers={"Retry-After": "2"},
            )
        time.sleep(_COMPLETE_POLL_SECONDS)


def _live_session(app: App, principal: Principal, media_id: str) -> UploadSession | None:
    """The caller's session with this id, unless it ended unused (its URL expired)."""
    if not _MEDIA_ID.match(media_id):
        return None
    session = app.sessions.find(principal.tenant_ids, media_id)
    if session is not None and session.expired(app.sessions.now()):
        return None
    return session


def _require_number(app: App, number: str, tenant_id: str) -> None:
    _require_owner(app.directory.number_owner(number), number, tenant_id)


def _require_owner(owner: str | None, number: str, tenant_id: str) -> None:
    if owner != tenant_id:
        raise Forbidden(
            f"{number} is not provisioned for tenant {tenant_id}", code="number_not_provisioned"
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _not_found(media_id: str) -> NotFound:
    # Another tenant's media is indistinguishable from none at all.
    return NotFound(f"media {media_id} not found", code="media_not_found")
