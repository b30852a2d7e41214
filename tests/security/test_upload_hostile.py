"""Hostile uploads over real HTTP: malformed `data`, hostile JSON, oversize bodies, lying types,
polyglots and file names. Every refusal has its exact status and leaves nothing stored."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from shared.app import App
from tests import samples
from tests.conftest import TenantAccount
from tests.security.conftest import expect, post_media, stored, upload_body

pytestmark = pytest.mark.e2e

JPEG = samples.image("JPEG")
B64 = base64.b64encode(JPEG).decode()
MB5 = 5 * 1024 * 1024

Body = Callable[[TenantAccount], bytes]


def with_data(raw_json: str) -> Body:
    """A valid envelope whose `data` is the literal JSON `raw_json`."""

    def build(account: TenantAccount) -> bytes:
        envelope = upload_body(account, JPEG, data=None)
        return json.dumps(envelope).replace('"data": null', f'"data": {raw_json}').encode()

    return build


def fields(**changes: Any) -> Body:
    return lambda account: json.dumps(upload_body(account, JPEG, **changes)).encode()


def raw(text: str) -> Body:
    def build(account: TenantAccount) -> bytes:
        return text.format(number=account.number, tenant=account.tenant_id, b64=B64).encode()

    return build


ENVELOPE = '"phoneNumber": "{number}", "fileName": "photo.jpg", "contentType": "image/jpeg"'
GIF_JS_POLYGLOT = b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00;*/=alert(document.domain)//;"
PDF_WITH_JPEG_HEADER = b"\xff\xd8\xff\xe0" + samples.PDF

# (id, body, exact status, problem code)
REFUSED: list[tuple[str, Body, int, str]] = [
    # `data` in every malformed form
    ("b64-bad-padding", with_data('"QUJD="'), 400, "invalid_base64"),
    ("b64-too-much-padding", with_data('"QQ==="'), 400, "invalid_base64"),
    ("b64-padding-in-the-middle", with_data('"QQ==QUJD"'), 400, "invalid_base64"),
    ("b64-url-safe-alphabet", with_data('"_-8A"'), 400, "invalid_base64"),
    ("b64-form-feed", with_data(json.dumps(B64[:40] + "\f" + B64[40:])), 400, "invalid_base64"),
    ("b64-vertical-tab", with_data(json.dumps(B64[:40] + "\v" + B64[40:])), 400, "invalid_base64"),
    ("b64-nbsp", with_data(json.dumps(B64[:40] + "\u00a0" + B64[40:])), 400, "invalid_base64"),
    ("b64-empty", with_data('""'), 400, "empty_file"),
    ("ints-256", with_data("[255, 216, 256]"), 400, "invalid_data"),
    ("ints-negative", with_data("[255, -1]"), 400, "invalid_data"),
    ("ints-bignum", with_data("[1, 99999999999999999999999999]"), 400, "invalid_data"),
    ("ints-float", with_data("[255, 216.5]"), 400, "invalid_data"),
    ("ints-float-integral", with_data("[255, 216.0]"), 400, "invalid_data"),
    ("ints-exponent", with_data("[1e2]"), 400, "invalid_data"),
    ("ints-strings", with_data('["255", "216"]'), 400, "invalid_data"),
    ("ints-nested", with_data("[[255], [216]]"), 400, "invalid_data"),
    ("ints-null-element", with_data("[255, null]"), 400, "invalid_data"),
    ("ints-bool", with_data("[true, false]"), 400, "invalid_data"),
    ("ints-empty", with_data("[]"), 400, "empty_file"),
    ("data-null", with_data("null"), 400, "invalid_data"),
    ("data-object", with_data('{"0": 255}'), 400, "invalid_data"),
    ("data-number", with_data("255"), 400, "invalid_data"),
    ("data-missing", fields(data=None), 400, "invalid_data"),
    # hostile JSON
    ("duplicate-top-level-key", raw('{{' + ENVELOPE + ', "tenantId": "{tenant}", "tenantId": "{tenant}", "data": "{b64}"}}'), 400, "duplicate_key"),
    ("duplicate-data-key", raw('{{' + ENVELOPE + ', "tenantId": "{tenant}", "data": "QQ==", "data": "{b64}"}}'), 400, "duplicate_key"),
    ("duplicate-nested-key", raw('{{' + ENVELOPE + ', "tenantId": "{tenant}", "x": {{"a": 1, "a": 2}}, "data": "{b64}"}}'), 400, "duplicate_key"),
    ("deep-nesting-extra-field", raw('{{' + ENVELOPE + ', "tenantId": "{tenant}", "x": ' + "[" * 50_000 + "]" * 50_000 + ', "data": "{b64}"}}'), 400, "malformed_json"),
    ("deep-nesting-in-data", with_data("[" * 50_000 + "]" * 50_000), 400, "malformed_json"),
    ("huge-key-count", raw('{{' + ENVELOPE + ', "tenantId": "{tenant}", ' + ", ".join(f'"k{i}": 0' for i in range(20_000)) + ', "data": "{b64}"}}'), 400, "envelope_too_large"),
    ("body-is-an-array", raw("[]"), 400, "malformed_json"),
    ("body-is-empty", raw(""), 400, "malformed_json"),
    ("body-not-utf8", lambda a: b'{"fileName": "\xff\xfe.jpg"}', 400, "malformed_json"),
    ("body-truncated", lambda a: json.dumps(upload_body(a, JPEG)).encode()[:-10], 400, "malformed_json"),
    ("field-wrong-type", fields(tenantId=["x"]), 400, "validation_failed"),
    # lying content types and polyglots
    ("gif-js-polyglot-declared-javascript", fields(fileName="x.js", contentType="text/javascript", data=base64.b64encode(GIF_JS_POLYGLOT).decode()), 415, "unsupported_media_type"),
    ("gif-js-polyglot-declared-text", fields(fileName="x.txt", contentType="text/plain", data=base64.b64encode(GIF_JS_POLYGLOT).decode()), 415, "content_type_mismatch"),
    ("pdf-with-jpeg-header-declared-pdf", fields(fileName="doc.pdf", contentType="application/pdf", data=base64.b64encode(PDF_WITH_JPEG_HEADER).decode()), 415, "content_type_mismatch"),
    ("html-declared-jpeg", fields(data=base64.b64encode(b"<html><script>alert(1)</script></html>").decode()), 415, "content_type_mismatch"),
    ("svg-declared-png", fields(fileName="x.png", contentType="image/png", data=base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>').decode()), 415, "content_type_mismatch"),
    ("svg-declared-svg", fields(fileName="x.svg", contentType="image/svg+xml"), 415, "unsupported_media_type"),
    ("content-type-header-injection", fields(contentType="image/jpeg\r\nX-Injected: 1"), 415, "unsupported_media_type"),
    ("executable-extension", fields(fileName="photo.php"), 400, "extension_mismatch"),
    ("double-extension-executable-last", fields(fileName="photo.jpg.exe"), 400, "extension_mismatch"),
    ("text-with-nul-bytes", fields(fileName="a.txt", contentType="text/plain", data=base64.b64encode(b"hi\x00there").decode()), 415, "content_type_mismatch"),
    ("text-not-utf8", fields(fileName="a.txt", contentType="text/plain", data=base64.b64encode(b"caf\xe9").decode()), 415, "content_type_mismatch"),
    ("file-name-too-long", fields(fileName="a" * 300 + ".jpg"), 400, "validation_failed"),
    ("file-name-blank", fields(fileName="   "), 400, "validation_failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "status", "code"),
    [pytest.param(b, s, c, id=i) for i, b, s, c in REFUSED],
)
def test_hostile_upload_is_refused_and_stores_nothing(
    base_url: str, app: App, account: TenantAccount, build: Body, status: int, code: str
) -> None:
    before = stored(app, account.tenant_id)
    response = post_media(base_url, account, data=build(account))
    expect(response, status, code)
    assert stored(app, account.tenant_id) == before


def test_gnu_base64_line_wrapping_is_accepted_with_identical_bytes(
    base_url: str, account: TenantAccount
) -> None:
    # Documented leniency: `base64` on Linux wraps at 76 columns and the guide's curl example
    # passes that through, so \n, \r\n, spaces and tabs inside the string are ignored.
    wrapped = "\r\n".join(B64[i : i + 76] for i in range(0, len(B64), 76)) + "\n"
    body = expect(post_media(base_url, account, json=upload_body(account, JPEG, data=wrapped)), 201)
    assert body["sha256"] == hashlib.sha256(JPEG).hexdigest()
    served = requests.get(body["uri"], timeout=10)
    assert served.content == JPEG


def test_body_over_the_encoded_limit_is_413_before_any_decoding(
    base_url: str, app: App, account: TenantAccount
) -> None:
    # Not even valid JSON: a parser that decoded first would answer 400, not 413.
    body = b'{"data": "' + b"A" * (MB5 * 5 + 70_000)
    before = stored(app, account.tenant_id)
    started = time.monotonic()
    expect(post_media(base_url, account, data=body), 413, "media_too_large")
    assert time.monotonic() - started < 10
    assert stored(app, account.tenant_id) == before


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b: json.dumps(base64.b64encode(b).decode()), id="base64"),
        pytest.param(lambda b: "[" + ",".join("0" for _ in range(len(b))) + "]", id="int-array"),
    ],
)
def test_one_byte_over_five_mb_is_413_in_both_encodings(
    base_url: str, app: App, account: TenantAccount, encode: Callable[[bytes], str]
) -> None:
    before = stored(app, account.tenant_id)
    build = with_data(encode(b"\xff" * (MB5 + 1)))
    expect(post_media(base_url, account, data=build(account)), 413, "media_too_large")
    assert stored(app, account.tenant_id) == before


@pytest.mark.parametrize(
    ("data", "file_name", "content_type"),
    [
        pytest.param(GIF_JS_POLYGLOT, "x.gif", "image/gif", id="gif-js-polyglot"),
        pytest.param(PDF_WITH_JPEG_HEADER, "x.jpg", "image/jpeg", id="pdf-with-jpeg-header"),
    ],
)
def test_polyglot_declared_as_its_magic_type_is_served_only_as_that_type(
    base_url: str, account: TenantAccount, data: bytes, file_name: str, content_type: str
) -> None:
    # The bytes carry the declared type's signature, so they are accepted; what keeps the other
    # reading harmless is that the URL only ever serves the verified type (browsers refuse to run
    # script from image/* and do not render it as a document).
    body = upload_body(account, data, fileName=file_name, contentType=content_type)
    created = expect(post_media(base_url, account, json=body), 201)
    served = requests.get(created["uri"], timeout=10)
    assert served.headers["Content-Type"] == content_type
    assert served.content == data


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        pytest.param("../../../etc/passwd.jpg", "etc_passwd.jpg", id="dot-dot-slash"),
        pytest.param("..\\..\\windows\\win.ini.jpg", "windows_win.ini.jpg", id="backslashes"),
        pytest.param("%2e%2e%2fsecret.jpg", "2e_2e_2fsecret.jpg", id="percent-encoded"),
        pytest.param("photo\u0000.jpg", "photo.jpg", id="nul"),
        pytest.param(
            "a\r\nContent-Type: text/html.jpg", "a__Content-Type_ text_html.jpg", id="crlf"
        ),
        pytest.param("evil\u202egnp.jpg", "evil_gnp.jpg", id="bidi-override"),
        pytest.param("zero\u200bwidth.jpg", "zero_width.jpg", id="zero-width"),
        pytest.param("what?x=1#frag.jpg", "what_x_1_frag.jpg", id="url-specials"),
        pytest.param(".jpg", "file.jpg", id="dot-file"),
        pytest.param("x" * 250 + ".jpg", "x" * 124 + ".jpg", id="long"),
    ],
)
def test_hostile_file_names_are_sanitised(
    base_url: str, app: App, account: TenantAccount, file_name: str, expected: str
) -> None:
    created = expect(
        post_media(base_url, account, json=upload_body(account, JPEG, fileName=file_name)), 201
    )
    assert created["fileName"] == expected
    names = stored(app, account.tenant_id).blobs
    assert names == {f"{created['mediaId']}/{expected}"}
    assert requests.get(created["uri"], timeout=10).content == JPEG
