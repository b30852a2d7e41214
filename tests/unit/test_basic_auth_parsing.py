import base64

import pytest

from shared.auth import parse_basic
from shared.errors import Unauthorized


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_email_and_password_are_split_on_the_first_colon() -> None:
    assert parse_basic(basic(b"a@example.com:pa:ss")) == ("a@example.com", "pa:ss")


def test_scheme_is_case_insensitive() -> None:
    assert parse_basic("bAsIc " + basic(b"a@b.c:x")[6:]) == ("a@b.c", "x")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "Basic",
        "Basic !!!notbase64",
        basic(b"no-colon-here"),
        basic(b":password-only"),
        basic(b"user@example.com:"),
        basic(b"\xff\xfe:\xff"),  # not UTF-8
        "Basic " + "A" * 10_000,  # 10 KB header
    ],
)
def test_malformed_headers_are_unauthorized(header: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        parse_basic(header)
    assert caught.value.headers["WWW-Authenticate"].startswith("Basic realm=")
