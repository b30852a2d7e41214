"""The carrier's HMAC signature: exact bytes, a 5-minute window either way, constant-time match."""

import pytest

from shared.errors import SignatureInvalid
from shared.inbound.signature import carrier_signature, verify_carrier_signature

SECRET = "s3cret"
BODY = b'{"messageId":"SM1","from":"+15559876543","to":"+15551234567"}'
NOW = 1_700_000_000


def headers(signature: str, stamp: int = NOW) -> dict[str, str]:
    return {"X-Carrier-Timestamp": str(stamp), "X-Carrier-Signature": signature}


def verify(h: dict[str, str], body: bytes = BODY) -> None:
    verify_carrier_signature(SECRET, h, body, now=NOW, tolerance=300)


def test_a_correct_signature_verifies_with_any_header_case() -> None:
    sig = carrier_signature(SECRET, NOW, BODY)
    assert sig.startswith("v1=") and len(sig) == 3 + 64
    verify({k.lower(): v for k, v in headers(sig).items()})


@pytest.mark.parametrize("skew", [-300, 300])
def test_timestamps_at_the_edge_of_the_window_verify(skew: int) -> None:
    verify(headers(carrier_signature(SECRET, NOW + skew, BODY), NOW + skew))


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_outside_the_window_are_expired(skew: int) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(headers(carrier_signature(SECRET, NOW + skew, BODY), NOW + skew))
    assert caught.value.code == "signature_expired"


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    with pytest.raises(SignatureInvalid):
        verify(headers(carrier_signature(SECRET, NOW - 1, BODY), NOW))


def test_one_changed_byte_fails() -> None:
    sig = carrier_signature(SECRET, NOW, BODY)
    with pytest.raises(SignatureInvalid):
        verify(headers(sig), BODY.replace(b"SM1", b"SM2"))


def test_a_reserialised_body_fails() -> None:
    sig = carrier_signature(SECRET, NOW, BODY)
    with pytest.raises(SignatureInvalid):
        verify(headers(sig), BODY.replace(b",", b", "))


def test_any_of_several_signatures_may_match_during_a_rotation() -> None:
    good = carrier_signature(SECRET, NOW, BODY)
    old = carrier_signature("old-secret", NOW, BODY)
    verify(headers(f"{old}, {good}"))


@pytest.mark.parametrize(
    "h",
    [
        {},
        {"X-Carrier-Timestamp": str(NOW)},
        {"X-Carrier-Timestamp": "soon", "X-Carrier-Signature": "v1=00"},
        {"X-Carrier-Timestamp": str(NOW), "X-Carrier-Signature": "v0=" + "0" * 64},
        {"X-Carrier-Timestamp": str(NOW), "X-Carrier-Signature": "v1=ü"},
    ],
)
def test_missing_or_malformed_headers_fail(h: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid):
        verify(h)
