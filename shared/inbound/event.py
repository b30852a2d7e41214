"""The carrier's inbound message event, validated at the edge (`shared.json_body`) before anything
is stored.

Carrier contract in docs/webhooks.md; a sample lives in tests/events/inbound_mms.json.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import msgspec

from shared import json_body
from shared.errors import ValidationFailed
from shared.phone import parse_e164

MAX_EVENT_BYTES = 64 * 1024
MAX_ATTACHMENTS = 10
# Carrier ids become table keys and log fields: a conservative alphabet keeps both safe.
CARRIER_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
# Short codes and alphanumeric sender ids send MMS too; they are kept as sent.
_SENDER = re.compile(r"^[0-9A-Za-z]{3,16}$")


class CarrierAttachment(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    name: Annotated[str, msgspec.Meta(max_length=255)] = ""
    content_type: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    size: Annotated[int, msgspec.Meta(ge=0)] | None = None


class CarrierEvent(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    message_id: Annotated[str, msgspec.Meta(pattern=CARRIER_ID)]
    from_: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    to: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    message: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    attachments: Annotated[
        tuple[CarrierAttachment, ...], msgspec.Meta(max_length=MAX_ATTACHMENTS)
    ] = ()
    received_at: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    # Which provider's adapter (shared.carriers) made the event: it decides whose credentials
    # may fetch the attachments. Never taken from a generic webhook's body.
    carrier: str | None = None


_DECODER = msgspec.json.Decoder(CarrierEvent)


def parse_event(body: bytes) -> CarrierEvent:
    """The event with `to` (and an E.164 `from`) in canonical form; 400 naming the bad field."""
    event = json_body.decode(body, _DECODER)
    to = parse_e164(event.to)
    if to is None:
        raise ValidationFailed.field("to", "must be an E.164 number such as +15551234567")
    sender = parse_e164(event.from_)
    if sender is None and not _SENDER.match(event.from_):
        raise ValidationFailed.field("from", "must be an E.164 number or a short code")
    return msgspec.structs.replace(event, to=to, from_=sender or event.from_, carrier=None)


def carrier_event(carrier: str, fields: dict[str, Any]) -> CarrierEvent:
    """A provider's inbound message, translated into the generic event's fields, validated
    exactly as the generic webhook's body is, and marked with the provider it came from."""
    if not str(fields.get("messageId", "")).removeprefix(f"{carrier}:"):
        raise ValidationFailed.field("messageId", f"the {carrier} message id is missing")
    body = json.dumps({k: v for k, v in fields.items() if v is not None}).encode()
    return msgspec.structs.replace(parse_event(body), carrier=carrier)


def encode_event(event: CarrierEvent) -> str:
    return msgspec.json.encode(event).decode()


def decode_event(text: str) -> CarrierEvent:
    return _DECODER.decode(text.encode())
