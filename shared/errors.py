"""The one error hierarchy. Each error carries its HTTP status and a stable machine code;
`shared.http` is the only place that turns them into `application/problem+json` responses.

    ConfigurationError                 start-up only, never a response
    ServiceError (500)
    +-- BadRequest (400)
    |   +-- ValidationFailed           names every bad field
    +-- Unauthorized (401), SignatureInvalid (401), Forbidden (403), NotFound (404)
    +-- Conflict (409)
    |   +-- AlreadyExists              storage: a create found its key taken
    |   +-- ChangedMeanwhile           storage: a conditional write lost a race (412 or 404)
    +-- PayloadTooLarge (413), UnsupportedMediaType (415), Unprocessable (422)
    +-- TooManyRequests (429)
    |   +-- LoginThrottled
    +-- NotConfigured (503)            a setting is absent or refused
    +-- StorageUnavailable (503)       storage unreachable, 5xx or throttling; Retry-After
    +-- StorageRejected (500)          storage refused a request as malformed: our defect

Storage errors are translated once, where the SDK is called (`shared.storage.storage_errors`);
no other module inspects an SDK exception or a raw status code.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ConfigurationError(Exception):
    """Settings are missing or invalid; raised at start-up, never mapped to a client response."""


class ServiceError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(ServiceError):
    status = 400
    code = "bad_request"
    title = "Bad Request"


class ValidationFailed(BadRequest):
    """A request field is invalid; `errors` names each field (location, message, type)."""

    code = "validation_failed"

    def __init__(self, detail: str, errors: list[dict[str, str]], *, code: str | None = None):
        super().__init__(detail, code=code, extra={"errors": errors})

    @classmethod
    def field(
        cls, field: str, message: str, *, code: str = "validation_failed"
    ) -> ValidationFailed:
        return cls(f"{field}: {message}", [{"field": field, "message": message}], code=code)


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str = "Valid credentials are required.", *, realm: str = "api"):
        super().__init__(
            detail, headers={"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'}
        )


class SignatureInvalid(ServiceError):
    """A signed peer (carrier) request whose signature is missing, wrong or stale."""

    status = 401
    code = "signature_invalid"
    title = "Unauthorized"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    title = "Not Found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    title = "Conflict"


class AlreadyExists(Conflict):
    """A create found its key taken: someone else created the resource first."""

    code = "already_exists"

    def __init__(self, detail: str = "The resource already exists.") -> None:
        super().__init__(detail)


class ChangedMeanwhile(Conflict):
    """A conditional write lost: the resource changed or vanished since it was read."""

    code = "concurrent_update"

    def __init__(self, detail: str = "The resource changed meanwhile; retry.") -> None:
        super().__init__(detail)


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"
    title = "Payload Too Large"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported Media Type"


class Unprocessable(ServiceError):
    status = 422
    code = "unprocessable"
    title = "Unprocessable Content"


class TooManyRequests(ServiceError):
    status = 429
    code = "too_many_requests"
    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class LoginThrottled(TooManyRequests):
    """Too many failed logins for a user or from an address; drains by itself (shared.auth)."""

    code = "too_many_login_failures"


class NotConfigured(ServiceError):
    """A required setting is absent, so the endpoint refuses rather than run unsafely."""

    status = 503
    code = "not_configured"
    title = "Service Unavailable"


class StorageUnavailable(ServiceError):
    status = 503
    code = "storage_unavailable"
    title = "Service Unavailable"

    def __init__(self, detail: str = "Storage is temporarily unavailable; retry shortly.") -> None:
        super().__init__(detail, headers={"Retry-After": "5"})


class StorageRejected(ServiceError):
    """Storage refused a request as malformed: a defect of ours, never the client's fault."""

    code = "storage_rejected"
