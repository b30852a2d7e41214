"""E.164 phone numbers, parsed and checked with `phonenumbers`."""

from __future__ import annotations

import re

import phonenumbers

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def parse_e164(value: str) -> str | None:
    """The number in canonical E.164 form, or None when `value` is not a possible E.164 number.

    Possible rather than valid: the guide's own examples use the fictional 555 range, and carriers,
    not us, decide whether a possible number is assigned.
    """
    if not isinstance(value, str) or not _E164.match(value):
        return None
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    canonical = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return canonical if canonical == value else None
