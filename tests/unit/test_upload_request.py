"""Parsing the upload body: every field validated, `data` in both encodings, limits exact."""

import base64
import json
from typing import Any

import pytest

from shared.errors import BadRequest, PayloadTooLarge, ValidationFailed
from shared.media.upload_request import MAX_ENVELOPE_BYTES, parse_upload

LIMIT = 5 * 1024 * 1024
TENANT = "00000000-0000-0000-0000-000000000000"


def body(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "phoneNumber": "+15551234567",
        "fileName": "a.jpg",
        "contentType": "image/jpeg",
        "data": base64.b64encode(b"\xff\xd8\xff abc").decode(),
        "tenantId": TENANT,
    }
    fields.update(overrides)
    return json.dumps({k: v for k, v in fields.items() if v is not ...}).encode()


def data_of(raw: bytes) -> bytes:
    return parse_upload(raw, LIMIT).decode_data(LIMIT)


def errors_of(raw: bytes) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        data_of(raw)
    errors: list[dict[str, str]] = caught.value.extra["errors"]
    return errors


def test_base64_and_integer_array_give_the_same_bytes() -> None:
    payload = bytes(range(256)) * 3
    as_text = data_of(body(data=base64.b64encode(payload).decode()))
    as_ints = data_of(body(data=list(payload)))
    assert as_text == as_ints == payload


def test_python_json_separators_and_unknown_fields_are_fine() -> None:
    raw = json.dumps({**json.loads(body()), "extra": {"x": 1}, "data": [1, 2, 3]}).encode()
    assert data_of(raw) == b"\x01\x02\x03"


def test_gnu_base64_line_wrapping_is_accepted() -> None:
    payload = bytes(range(256)) * 2
    wrapped = base64.encodebytes(payload).decode()  # 76-column lines, as `base64 file` prints
    raw = body(data="PLACEHOLDER").replace(b'"PLACEHOLDER"', b'"' + wrapped.encode() + b'"')
    assert data_of(raw) == payload  # raw newlines inside the JSON string, as the curl example sends


def test_json_escaped_base64_is_decoded() -> None:
    payload = b"\xfb\xff\xbe" * 10  # base64 with '+' and '/', escaped as \u002B by System.Text.Json
    text = base64.b64encode(payload).decode().replace("+", "\\u002B").replace("/", "\\/")
    raw = body(data="X").replace(b'"X"', b'"' + text.encode() + b'"')
    assert data_of(raw) == payload


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"phoneNumber": "5551234567"}, "phoneNumber"),
        ({"phoneNumber": 15551234567}, "phoneNumber"),
        ({"tenantId": "not-a-guid"}, "tenantId"),
        ({"tenantId": ...}, "tenantId"),
        ({"fileName": ""}, "fileName"),
        ({"fileName": "x" * 256}, "fileName"),
        ({"contentType": ["image/jpeg"]}, "contentType"),
        ({"data": ...}, "data"),
        ({"data": "abc"}, "data"),  # bad padding
        ({"data": "ab-_"}, "data"),  # URL-safe alphabet
        ({"data": "YWJj!"}, "data"),
        ({"data": "é" * 4}, "data"),
        ({"data": ""}, "data"),  # empty file
        ({"data": []}, "data"),
        ({"data": [1, 256]}, "data[1]"),
        ({"data": [-1]}, "data[0]"),
        ({"data": [1.5]}, "data[0]"),
        ({"data": ["1"]}, "data[0]"),
        ({"data": [[1]]}, "data[0]"),
        ({"data": True}, "data"),
        ({"data": {"0": 1}}, "data"),
        ({"data": None}, "data"),
    ],
)
def test_each_invalid_field_is_400_naming_it(overrides: dict[str, Any], field: str) -> None:
    assert errors_of(body(**overrides))[0]["field"] == field


def test_several_invalid_fields_are_all_named() -> None:
    fields = {e["field"] for e in errors_of(body(phoneNumber="x", tenantId="y", fileName=""))}
    assert fields == {"phoneNumber", "tenantId", "fileName"}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1,2,3]",
        b'{"a": 1',
        b'{"phoneNumber": "+15551234567", "phoneNumber": "+15550000000"}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_json_duplicates_and_deep_nesting_are_400(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        data_of(raw)


def test_duplicate_data_keys_are_400() -> None:
    raw = body().replace(b'"tenantId"', b'"data": [1, 2], "tenantId"')
    with pytest.raises(BadRequest):
        data_of(raw)


def test_huge_key_counts_are_refused_by_envelope_size() -> None:
    extra = {f"k{i}": i for i in range(20_000)}
    raw = json.dumps({**json.loads(body()), **extra}).encode()
    assert len(raw) > MAX_ENVELOPE_BYTES
    with pytest.raises(BadRequest) as caught:
        data_of(raw)
    assert caught.value.code == "envelope_too_large"


def test_exactly_5_mb_is_accepted_in_both_encodings() -> None:
    payload = b"\x00" * LIMIT
    assert len(data_of(body(data=base64.b64encode(payload).decode()))) == LIMIT
    assert len(data_of(body(data=list(payload)))) == LIMIT


@pytest.mark.parametrize("encoding", ["base64", "array"])
def test_one_byte_over_5_mb_is_413(encoding: str) -> None:
    payload = b"\x00" * (LIMIT + 1)
    data: Any = base64.b64encode(payload).decode() if encoding == "base64" else list(payload)
    with pytest.raises(PayloadTooLarge) as caught:
        data_of(body(data=data))
    assert caught.value.detail == "Media file exceeds maximum size of 5MB"


def test_oversized_array_is_refused_before_its_integers_are_parsed() -> None:
    # Every element is out of range, yet the answer is 413: the count alone decided.
    raw = body(data="X").replace(b'"X"', b"[" + b"300," * LIMIT + b"300]")
    with pytest.raises(PayloadTooLarge):
        data_of(raw)


def test_body_too_big_for_any_5_mb_file_is_413_before_parsing() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_upload(b"{" + b" " * (LIMIT * 5 + MAX_ENVELOPE_BYTES), LIMIT)


def test_a_nested_data_key_is_not_taken_for_the_file() -> None:
    raw = json.dumps({"extra": {"data": [9, 9]}, **json.loads(body(data=[1, 2, 3]))}).encode()
    assert data_of(raw) == b"\x01\x02\x03"
    decoy_only = json.dumps({"extra": {"data": [9, 9]}, **json.loads(body(data=None))}).encode()
    assert errors_of(decoy_only)[0]["field"] == "data"


def test_data_before_or_after_the_other_fields_and_with_spaces() -> None:
    fields = json.loads(body())
    first = json.dumps({"data": [7, 8], **{k: v for k, v in fields.items() if k != "data"}})
    assert data_of(first.encode()) == b"\x07\x08"
    spaced = body(data="X").replace(b'"data": "X"', b'"data"  :\n  [ 1 ,\t2 ]')
    assert data_of(spaced) == b"\x01\x02"


def test_a_string_value_that_looks_like_the_key_changes_nothing() -> None:
    assert data_of(body(fileName='"data": [1].jpg', data=[5])) == b"\x05"


def test_escaped_quote_inside_data_is_refused_as_bad_base64() -> None:
    raw = body(data="X").replace(b'"X"', b'"YWJj\\"YWJj"')
    assert errors_of(raw)[0]["field"] == "data"
