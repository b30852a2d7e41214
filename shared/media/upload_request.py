"""Parsing and validating an upload request body without wasting time or memory on big files.

`data` arrives as a base64 string (curl, C#) or a JSON array of integers (Python `list(bytes)`,
Node `Array.from(buffer)`), up to 5 MB decoded. The small envelope is read with `shared.json_body`
(duplicate keys refused) while `data` stays raw JSON, so an oversized file is refused from its
encoded length or element count before anything is decoded; msgspec then decodes it in one pass,
the integer array straight into C-validated small ints.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from shared import json_body
from shared.errors import BadRequest, PayloadTooLarge, ValidationFailed
from shared.phone import parse_e164
from shared.tenancy import normalise_tenant_id

# Everything but `data` is small: bounding it bounds the work a hostile envelope can cause.
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_FILE_NAME = 255
# Worst case encoding: "255, " per byte (Python's json.dumps separators).
_BYTES_PER_ELEMENT = 5
_Octet = Annotated[int, msgspec.Meta(ge=0, le=255)]
_OCTETS = msgspec.json.Decoder(list[_Octet])
_INTS = msgspec.json.Decoder(list[int])
_STRING = msgspec.json.Decoder(str)
_DATA_KEY = re.compile(rb'"data"\s*:\s*')
_BYTES = msgspec.json.Decoder(bytes)
TOO_LARGE = "Media file exceeds maximum size of 5MB"


@dataclass(frozen=True)
class Encoded:
    """`data` still as JSON text: a span of the request body, read in place, never copied."""

    source: bytes
    start: int
    stop: int

    @classmethod
    def of(cls, raw: Any) -> Encoded:
        if isinstance(raw, Encoded):
            return raw
        data = bytes(raw)
        return cls(data, 0, len(data))

    @property
    def view(self) -> memoryview:
        return memoryview(self.source)[self.start : self.stop]

    def __len__(self) -> int:
        return self.stop - self.start

    def count(self, sub: bytes) -> int:
        return self.source.count(sub, self.start, self.stop)


@dataclass(frozen=True)
class UploadRequest:
    phone_number: str
    file_name: str
    declared_type: str  # as sent; normalise with `types.normalise_declared`
    tenant_id: str
    raw_data: Encoded  # `data` still encoded: decoded only once the caller may upload
    sha256: None = None  # not known before decoding (a form upload's is)

    def decode_data(self, max_bytes: int) -> bytes:
        return decode_data(self.raw_data, max_bytes)


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(TOO_LARGE, code="media_too_large")


def parse_upload(body: bytes, max_bytes: int) -> UploadRequest:
    """Every field but `data` validated (400 naming each bad field); `data` left encoded."""
    if len(body) > max_bytes * _BYTES_PER_ELEMENT + MAX_ENVELOPE_BYTES:
        raise too_large()
    fields = _decode_envelope(body)
    errors: list[dict[str, str]] = []
    values = {name: _string_field(fields, name, errors) for name in _STRING_FIELDS}
    missing = [] if "data" in fields else [_err("data", "is required")]
    phone, file_name, declared, tenant_id = check_fields(values, errors, missing)
    return UploadRequest(phone, file_name, declared, tenant_id, Encoded.of(fields["data"]))


def check_fields(
    values: Mapping[str, str | None],
    errors: list[dict[str, str]],
    file_errors: Sequence[dict[str, str]] = (),
) -> tuple[str, str, str, str]:
    """(phone number, file name, declared type, tenant id) from an upload's text fields, the
    same rules for every way of uploading; 400 naming every bad field: those the caller found
    reading the fields (a missing field is None in `values`, already in `errors`), these, then
    `file_errors` (about the file itself)."""
    phone = parse_e164(values["phoneNumber"]) if values["phoneNumber"] is not None else None
    if values["phoneNumber"] is not None and phone is None:
        errors.append(_err("phoneNumber", "must be an E.164 number such as +15551234567"))
    tenant_id = None
    if values["tenantId"] is not None:
        try:
            tenant_id = normalise_tenant_id(values["tenantId"])
        except ValidationFailed:
            errors.append(_err("tenantId", "must be a GUID"))
    file_name = values["fileName"]
    if file_name is not None and not (0 < len(file_name.strip()) <= MAX_FILE_NAME):
        errors.append(_err("fileName", f"must be 1 to {MAX_FILE_NAME} characters"))
    errors.extend(file_errors)
    if errors:
        raise ValidationFailed(f"{errors[0]['field']}: {errors[0]['message']}", errors)
    assert phone and tenant_id and file_name and values["contentType"] is not None
    return phone, file_name, values["contentType"], tenant_id


_STRING_FIELDS = ("phoneNumber", "fileName", "contentType", "tenantId")


@dataclass(frozen=True)
class SessionRequest:
    """An upload session's request: the upload's fields without the file."""

    phone_number: str
    file_name: str
    declared_type: str  # as sent; normalise with `types.normalise_declared`
    tenant_id: str


def parse_session_request(body: bytes) -> SessionRequest:
    """The JSON body of POST /api/v1/media/uploads, validated as the upload's fields are."""
    if len(body) > MAX_ENVELOPE_BYTES:
        raise _envelope_too_large()
    parsed = json_body.loads(body)
    if not isinstance(parsed, dict):
        raise BadRequest("Request body must be a JSON object.", code="malformed_json")
    fields = {k: msgspec.json.encode(v) for k, v in parsed.items()}
    errors: list[dict[str, str]] = []
    values = {name: _string_field(fields, name, errors) for name in _STRING_FIELDS}
    return SessionRequest(*check_fields(values, errors))


def _err(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _string_field(fields: dict[str, Any], name: str, errors: list[dict[str, str]]) -> str | None:
    raw = fields.get(name)
    if raw is None:
        errors.append(_err(name, "is required"))
        return None
    try:
        return _STRING.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        errors.append(_err(name, "must be a string"))
        return None


def _decode_envelope(body: bytes) -> dict[str, Any]:
    """Top-level fields as raw JSON, duplicate keys refused at every level. The fast path first;
    when it cannot vouch for the body's shape, the whole body is parsed, leniently: the guide's
    curl example on Linux sends GNU `base64` output, whose line breaks are raw newlines inside
    the JSON string."""
    fields = _fast_envelope(body)
    if fields is not None:
        return fields
    parsed = json_body.loads(body, lenient=True)
    if not isinstance(parsed, dict):
        raise BadRequest("Request body must be a JSON object.", code="malformed_json")
    envelope = {k: v for k, v in parsed.items() if k != "data"}
    if len(msgspec.json.encode(envelope)) > MAX_ENVELOPE_BYTES:
        raise _envelope_too_large()
    return {k: msgspec.Raw(msgspec.json.encode(v)) for k, v in parsed.items()}


def _fast_envelope(body: bytes) -> dict[str, Any] | None:
    """The envelope without reading the file: find the top-level `data` value (an array of
    integers ends at the first `]`, a base64 string at the first `"`), parse everything else
    (small), and hand `data` over still encoded, to be decoded once, strictly. None whenever
    this cannot vouch for the body's shape. Worth it: a 5 MB file as integers takes ~150 ms
    to parse whole, the rest of its envelope ~1 ms."""
    key = _DATA_KEY.search(body)
    if key is None:
        return None
    start = key.end()
    opener = body[start : start + 1]
    end = body.find(b"]" if opener == b"[" else b'"', start + 1) if opener in (b"[", b'"') else -1
    if end < 0 or body[end - 1 : end] == b"\\":
        return None
    rest = body[:start] + b"null" + body[end + 1 :]
    if len(rest) > MAX_ENVELOPE_BYTES or len(_DATA_KEY.findall(rest)) != 1:
        return None  # bulky, or another `data` key: possibly not the top-level one we found
    try:
        parsed = json_body.loads(rest, lenient=True)
    except BadRequest as exc:
        if exc.code == "duplicate_key":
            raise
        return None
    if not isinstance(parsed, dict) or "data" not in parsed or parsed["data"] is not None:
        return None
    fields: dict[str, Any] = {k: msgspec.json.encode(v) for k, v in parsed.items() if k != "data"}
    fields["data"] = Encoded(body, start, end + 1)
    return fields


def _envelope_too_large() -> BadRequest:
    return BadRequest(
        f"Request fields other than data exceed {MAX_ENVELOPE_BYTES} bytes.",
        code="envelope_too_large",
    )


def decode_data(raw: Any, max_bytes: int) -> bytes:
    """The file bytes from `data`: base64 text or an array of integers 0-255."""
    encoded = Encoded.of(raw)
    head = bytes(encoded.view[:64]).lstrip()[:1]
    if head == b'"':
        data = _decode_base64_json(encoded, max_bytes)
    elif head == b"[":
        data = _decode_octets(encoded, max_bytes)
    else:
        raise ValidationFailed.field(
            "data", "must be a base64 string or an array of integers 0-255", code="invalid_data"
        )
    if not data:
        raise ValidationFailed.field("data", "the file is empty", code="empty_file")
    return data


def _decode_base64_json(encoded: Encoded, max_bytes: int) -> bytes:
    """Fast path: msgspec decodes strict standard base64 straight from the JSON string (about
    2.5x faster than binascii) when its length proves it fits; anything else (line wrapping, bad
    padding, a size near the limit) takes the careful path for an exact answer."""
    tail = bytes(encoded.view[-4:]).rstrip()
    padding = 2 if tail.endswith(b'=="') else 1 if tail.endswith(b'="') else 0
    if (len(encoded) - 2) // 4 * 3 - padding <= max_bytes:
        try:
            return _BYTES.decode(encoded.view)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
    try:
        text = _STRING.decode(encoded.view)
    except (msgspec.ValidationError, msgspec.DecodeError):
        # Raw line breaks inside the string (the curl example on Linux): JSON only leniently.
        try:
            text = str(json.loads(bytes(encoded.view), strict=False))
        except ValueError:
            raise _bad_base64("is not a valid JSON string") from None
    return _decode_base64(text, max_bytes)


def _decode_base64(text: str, max_bytes: int) -> bytes:
    if not text.isascii():
        raise _bad_base64("contains non-ASCII characters")
    encoded = text.encode("ascii")
    if any(c in encoded for c in (b"\n", b"\r", b" ", b"\t")):
        encoded = encoded.translate(
            None, b"\n\r \t"
        )  # MIME-style line wrapping, as GNU base64 emits
    if len(encoded) % 4:
        raise _bad_base64("length is not a multiple of 4 (bad padding)")
    padding = len(encoded) - len(encoded.rstrip(b"="))
    if padding > 2:
        raise _bad_base64("has too much padding")
    if len(encoded) // 4 * 3 - padding > max_bytes:
        raise too_large()
    try:
        # strict_mode: standard alphabet only, no misplaced padding; far faster than validate=True.
        return binascii.a2b_base64(encoded, strict_mode=True)
    except binascii.Error:
        raise _bad_base64("is not valid standard base64") from None


def _bad_base64(why: str) -> ValidationFailed:
    return ValidationFailed.field("data", f"base64 {why}", code="invalid_base64")


def _decode_octets(encoded: Encoded, max_bytes: int) -> bytes:
    # Every element takes at least two bytes ("0,"), so short arrays cannot be over the limit;
    # integers hold no commas, so for longer ones the comma count is exact for any valid array.
    if len(encoded) // 2 > max_bytes and encoded.count(b",") + 1 > max_bytes:
        raise too_large()
    try:
        # bytes() checks the 0-255 range itself, in C; the slower path below only runs on errors.
        return bytes(_INTS.decode(encoded.view))
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError):
        pass
    try:
        _OCTETS.decode(encoded.view)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        where = re.search(r"\$\[(\d+)\]", str(exc))
        field = f"data[{where.group(1)}]" if where else "data"
    else:
        field = "data"
    raise ValidationFailed(
        f"{field}: must be an integer 0-255",
        [_err(field, "must be an integer 0-255")],
        code="invalid_data",
    )
