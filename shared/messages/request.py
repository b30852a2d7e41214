"""The send request: parsed strictly, every failure naming its field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import json_body
from shared.errors import BadRequest, PayloadTooLarge, ValidationFailed
from shared.phone import parse_e164

MAX_MEDIA = 10
MAX_REQUEST_BYTES = 256 * 1024


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    from_: str = Field(alias="from")
    to: list[str]
    body: str = ""
    media_urls: list[str] = Field(default_factory=list, alias="mediaUrls")
    status_callback: str | None = Field(default=None, alias="statusCallback")


def _field(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def parse_send(body: bytes, *, max_recipients: int, max_body: int) -> SendRequest:
    if len(body) > MAX_REQUEST_BYTES:
        raise PayloadTooLarge(
            f"Request body exceeds {MAX_REQUEST_BYTES} bytes.", code="request_too_large"
        )
    raw = json_body.loads(body)
    if not isinstance(raw, dict):
        raise BadRequest("Request body must be a JSON object.", code="malformed_json")
    try:
        request = SendRequest.model_validate(raw, strict=True)
    except ValidationError as exc:
        invalid = [{"field": _field(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise ValidationFailed(f"{invalid[0]['field']}: {invalid[0]['message']}", invalid) from None

    errors: list[dict[str, str]] = []
    if parse_e164(request.from_) is None:
        errors.append({"field": "from", "message": "must be an E.164 number"})
    if not request.to:
        errors.append({"field": "to", "message": "needs at least one recipient"})
    recipients = list(dict.fromkeys(request.to))  # duplicates removed, order kept
    if len(recipients) > max_recipients:
        errors.append(
            {"field": "to", "message": f"at most {max_recipients} recipients are allowed"}
        )
    errors += [
        {"field": f"to[{i}]", "message": "must be an E.164 number"}
        for i, number in enumerate(request.to)
        if parse_e164(number) is None
    ]
    if len(request.media_urls) > MAX_MEDIA:
        errors.append(
            {
                "field": "mediaUrls",
                "message": f"at most {MAX_MEDIA} media attachments are allowed per message "
                f"(got {len(request.media_urls)})",
            }
        )
    if len(request.body) > max_body:
        errors.append({"field": "body", "message": f"at most {max_body} characters"})
    if not request.body and not request.media_urls:
        errors.append({"field": "body", "message": "a message needs a body or media"})
    if errors:
        raise ValidationFailed(f"{errors[0]['field']}: {errors[0]['message']}", errors)
    return request.model_copy(update={"to": recipients})
