import json
from typing import Any

import pytest

from shared.errors import BadRequest, PayloadTooLarge, ValidationFailed
from shared.messages.request import parse_send


def parse(**fields: Any) -> Any:
    body = {"from": "+15551234567", "to": ["+15559876543"], "body": "hi", **fields}
    return parse_send(json.dumps({k: v for k, v in body.items() if v is not ...}).encode(),
                      max_recipients=100, max_body=1600)  # fmt: skip


def fields_of(**fields: Any) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        parse(**fields)
    return [e["field"] for e in caught.value.extra["errors"]]


def test_the_guides_request_parses() -> None:
    request = parse(mediaUrls=["https://example.com/a.jpg"], body="Check out our new product!")
    assert request.from_ == "+15551234567" and request.media_urls == ["https://example.com/a.jpg"]


def test_duplicate_recipients_are_removed_in_order() -> None:
    assert parse(to=["+15550000002", "+15550000001", "+15550000002"]).to == [
        "+15550000002",
        "+15550000001",
    ]


def test_ten_media_are_accepted_and_eleven_name_the_limit() -> None:
    assert len(parse(mediaUrls=[f"https://e.com/{i}.jpg" for i in range(10)]).media_urls) == 10
    with pytest.raises(ValidationFailed) as caught:
        parse(mediaUrls=[f"https://e.com/{i}.jpg" for i in range(11)])
    assert "at most 10 media" in caught.value.detail


def test_recipient_limit_is_exact() -> None:
    numbers = [f"+1555000{i:04d}" for i in range(101)]
    assert len(parse(to=numbers[:100]).to) == 100
    assert fields_of(to=numbers) == ["to"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"from": "5551234567"}, ["from"]),
        ({"from": ...}, ["from"]),
        ({"to": []}, ["to"]),
        ({"to": "+15559876543"}, ["to"]),
        ({"to": ["+15559876543", "nope"]}, ["to[1]"]),
        ({"to": [15559876543]}, ["to[0]"]),
        ({"body": "", "mediaUrls": []}, ["body"]),
        ({"body": 5}, ["body"]),
        ({"mediaUrls": "https://e.com/a.jpg"}, ["mediaUrls"]),
        ({"body": "x" * 1601}, ["body"]),
    ],
)
def test_invalid_fields_are_named(fields: dict[str, Any], expected: list[str]) -> None:
    assert fields_of(**fields) == expected


def test_media_without_body_is_fine() -> None:
    assert parse(body=..., mediaUrls=["https://e.com/a.jpg"]).body == ""


@pytest.mark.parametrize(
    "raw", [b"nope", b"[]", b'{"from": "+15551234567", "from": "+15550000000"}']
)
def test_malformed_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_send(raw, max_recipients=100, max_body=1600)


def test_oversized_body_is_413() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_send(b" " * (256 * 1024 + 1), max_recipients=100, max_body=1600)
