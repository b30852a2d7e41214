"""Reading JSON request bodies: typed with msgspec, every failure a 400 naming its field, and
duplicate keys refused at every level (parsers disagree on which duplicate wins, so a body with
one means different things to different readers)."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import msgspec

from shared.errors import BadRequest, ValidationFailed

T = TypeVar("T")

_PATH = re.compile(r"at `\$\.?([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def malformed() -> BadRequest:
    return BadRequest("Request body is not valid JSON.", code="malformed_json")


def loads(text: bytes | str, *, lenient: bool = False) -> Any:
    """The parsed value, duplicate keys refused. `lenient` admits raw control characters inside
    strings (what `base64` line wrapping puts into a hand-built body)."""
    try:
        return json.loads(text, strict=not lenient, object_pairs_hook=_refuse_duplicates)
    except (ValueError, RecursionError, UnicodeDecodeError):
        # BadRequest for a duplicate key is not a ValueError, so it passes through.
        raise malformed() from None


def decode[T](body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """`body` as the decoder's type; 400 naming the first bad field, or the body when it is not
    JSON, or the key it repeats."""
    try:
        value = decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc)) from None
    except (msgspec.DecodeError, RecursionError):  # msgspec's answer to deep nesting
        raise malformed() from None
    # msgspec keeps the last of duplicate keys, other parsers the first: refuse the ambiguity.
    loads(body)
    return value


def _invalid(message: str) -> ValidationFailed:
    where = _PATH.search(message)
    field = where.group(1) if where else ""
    missing = _MISSING.search(message)
    if missing:
        field = f"{field}.{missing.group(1)}" if field else missing.group(1)
    field = field or "body"
    text = message.split(" - at ", 1)[0]
    return ValidationFailed(f"{field}: {text}", [{"field": field, "message": text}])


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields = dict(pairs)
    if len(fields) != len(pairs):
        keys = [k for k, _ in pairs]
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise BadRequest(f"Duplicate JSON key: {duplicate!r}", code="duplicate_key")
    return fields
