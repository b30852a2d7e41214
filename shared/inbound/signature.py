"""The carrier's request signature: HMAC-SHA256 with the shared secret over
`{X-Carrier-Timestamp}.{raw body}`, sent as `X-Carrier-Signature: v1=<hex>` (docs/webhooks.md).

The raw bytes are what is signed, so a body that is parsed and re-serialised no longer verifies;
the timestamp bounds how long a captured request can be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from shared.errors import SignatureInvalid

TIMESTAMP_HEADER = "X-Carrier-Timestamp"
SIGNATURE_HEADER = "X-Carrier-Signature"
SCHEME = "v1"
_MAX_SIGNATURES = 4  # several `v1=` entries let the carrier sign with two secrets while rotating


def carrier_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The header value the carrier sends for `body` at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify_carrier_signature(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: int
) -> None:
    """Raise `SignatureInvalid` (401) unless one signature matches and the timestamp is within
    `tolerance` seconds of `now` either way."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "").strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} is missing or not unix seconds")
    if abs(now - int(stamp)) > tolerance:
        raise SignatureInvalid(
            f"{TIMESTAMP_HEADER} is more than {tolerance} seconds from our clock",
            code="signature_expired",
        )
    offered = [
        entry.strip().partition("=")
        for entry in lowered.get(SIGNATURE_HEADER.lower(), "").split(",")
        if entry.strip()
    ][:_MAX_SIGNATURES]
    expected = carrier_signature(secret, stamp, body).partition("=")[2].encode()
    matched = False
    for scheme, _, value in offered:
        # Every candidate is compared in constant time; none short-circuits the others.
        candidate = value.strip().lower().encode("ascii", "replace")
        matched |= scheme.strip() == SCHEME and hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} is missing or does not match the body")
