import pytest

from shared.phone import parse_e164


@pytest.mark.parametrize("number", ["+15551234567", "+447911123456", "+15559876543"])
def test_possible_e164_numbers_are_accepted(number: str) -> None:
    assert parse_e164(number) == number


@pytest.mark.parametrize(
    "value",
    ["15551234567", "+1 555 123 4567", "+1555", "+0123456789", "+1555123456789012", "", "+9991234"],
)
def test_non_e164_values_are_rejected(value: str) -> None:
    assert parse_e164(value) is None
