"""Reading a `multipart/form-data` upload (`curl -F file=@photo.jpg -F phoneNumber=...`): the same
fields as the JSON upload, the file as raw bytes in one `file` part.

Parsed with python-multipart's streaming parser over the body as it is held: the file's bytes are
counted, and hashed, as the parser finds them, so a file over the limit stops the parse at the
first byte past it (413, the JSON upload's text), and the file is copied once, out of the body.
A body whose declared length cannot hold a file within the limit is refused before any parsing.
Text fields are small (`MAX_ENVELOPE_BYTES` together, whatever their names); unknown fields are
ignored, as unknown JSON keys are.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from shared.errors import BadRequest, ValidationFailed
from shared.media.upload_request import MAX_ENVELOPE_BYTES, check_fields, too_large

FILE_FIELD = "file"
_TEXT_FIELDS = ("phoneNumber", "fileName", "contentType", "tenantId")
# Part headers beyond Content-Disposition and Content-Type are allowed, within reason.
_MAX_PART_HEADERS = 8


@dataclass(frozen=True)
class FormUpload:
    """A validated multipart upload: the JSON upload's fields, and the file's bytes and digest."""

    phone_number: str
    file_name: str
    declared_type: str  # as sent (or the part's Content-Type); normalise with `types`
    tenant_id: str
    data: bytes
    sha256: str

    def decode_data(self, max_bytes: int) -> bytes:
        return self.data  # already bounded by the parse

    @property
    def fingerprint(self) -> bytes:
        """What an Idempotency-Key is bound to: the fields and the file, not the boundary a
        client picked for this one attempt (curl draws a new one each time)."""
        fields = [self.phone_number, self.file_name, self.declared_type, self.tenant_id]
        return json.dumps([*fields, self.sha256]).encode()


def refuse_oversized(declared_length: str | None, max_bytes: int) -> None:
    """413 from the request's Content-Length alone, before the body is looked at, when it is more
    than a file within the limit plus the most the other fields may take."""
    limit = max_bytes + MAX_ENVELOPE_BYTES
    if declared_length and declared_length.isdigit() and int(declared_length) > limit:
        raise too_large()


def parse_form(body: bytes, content_type: str | None, max_bytes: int) -> FormUpload:
    """The upload in a `multipart/form-data` body; 400 naming each bad field, 413 for a file over
    `max_bytes` (the parse stops there)."""
    if len(body) > max_bytes + MAX_ENVELOPE_BYTES:
        raise too_large()
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest(
            "A multipart/form-data request needs a boundary in its Content-Type.",
            code="malformed_multipart",
        )
    reader = _FormReader(body, max_bytes)
    try:
        parser = MultipartParser(boundary, reader.callbacks(), max_header_count=_MAX_PART_HEADERS)
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        raise _malformed(str(exc)) from None
    if parser.state != MultipartState.END:
        raise _malformed("the closing boundary is missing")
    return reader.upload()


def _malformed(why: str) -> BadRequest:
    return BadRequest(
        f"Request body is not valid multipart/form-data: {why}.", code="malformed_multipart"
    )


def _err(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message}


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    spans: list[memoryview] = field(default_factory=list)
    size: int = 0


class _FormReader:
    """The parser's callbacks: parts collected as they are found, the file checked as it goes."""

    def __init__(self, body: bytes, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._texts: dict[str, bytes] = {}
        self._text_bytes = 0
        self._file: _Part | None = None
        self._hash = hashlib.sha256()

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._part = _Part()

    def _header_end(self) -> None:
        name = bytes(self._header_name).decode("latin-1").strip().lower()
        self._part.headers[name] = bytes(self._header_value).strip()
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        part = self._part
        disposition, options = parse_options_header(part.headers.get("content-disposition"))
        if disposition.lower() != b"form-data" or b"name" not in options:
            raise _malformed("a part without a Content-Disposition form-data name")
        part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            part.filename = options[b"filename"].decode("utf-8", "replace")
        if "content-type" in part.headers:
            part.content_type = part.headers["content-type"].decode("latin-1")
        if part.name == FILE_FIELD:
            if self._file is not None:
                raise ValidationFailed.field(FILE_FIELD, "send exactly one file part")
            self._file = part
        elif part.name in self._texts:
            raise BadRequest(f"Duplicate form field: {part.name!r}", code="duplicate_key")

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        part.size += end - start
        if part is self._file:
            if part.size > self._max_bytes:
                raise too_large()
            # Spans of immutable buffers (the body, or the parser's boundary when a look-alike
            # turned out to be data): kept as views, copied once when the file is complete.
            span = memoryview(data)[start:end]
            self._hash.update(span)
            part.spans.append(span)
            return
        self._text_bytes += end - start
        if self._text_bytes > MAX_ENVELOPE_BYTES:
            raise BadRequest(
                f"Form fields other than file exceed {MAX_ENVELOPE_BYTES} bytes.",
                code="envelope_too_large",
            )
        part.spans.append(memoryview(data)[start:end])

    def _end(self) -> None:
        part = self._part
        if part is not self._file:
            self._texts[part.name] = b"".join(part.spans)

    def upload(self) -> FormUpload:
        errors: list[dict[str, str]] = []
        values = {name: self._text(name, errors) for name in _TEXT_FIELDS}
        file_errors: list[dict[str, str]] = []
        part = self._file
        if part is None:
            file_errors.append(_err(FILE_FIELD, "is required"))
        else:
            if values["fileName"] is None and part.filename:
                values["fileName"] = part.filename
                errors[:] = [e for e in errors if e["field"] != "fileName"]
            if values["contentType"] is None and part.content_type:
                values["contentType"] = part.content_type
                errors[:] = [e for e in errors if e["field"] != "contentType"]
        phone, file_name, declared, tenant_id = check_fields(values, errors, file_errors)
        assert part is not None
        if part.size == 0:
            raise ValidationFailed.field(FILE_FIELD, "the file is empty", code="empty_file")
        data = part.spans[0].tobytes() if len(part.spans) == 1 else b"".join(part.spans)
        return FormUpload(phone, file_name, declared, tenant_id, data, self._hash.hexdigest())

    def _text(self, name: str, errors: list[dict[str, str]]) -> str | None:
        raw = self._texts.get(name)
        if raw is None:
            errors.append(_err(name, "is required"))
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(_err(name, "must be UTF-8 text"))
            return None
