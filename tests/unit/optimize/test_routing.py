"""Budget boundaries and types the optimiser cannot shrink."""

from __future__ import annotations

import dataclasses

import pytest

from shared.optimize import Result, optimize


def test_document_exactly_at_budget_is_not_needed() -> None:
    result = optimize(b"%PDF" + b"x" * 996, "application/pdf", budget_bytes=1000)

    assert result.state == "not_needed"
    assert result.content_type == "application/pdf"
    assert result.original_bytes == 1000
    assert result.data is None and result.reason is None


def test_document_one_byte_over_budget_fails_cannot_meet_budget() -> None:
    result = optimize(b"%PDF" + b"x" * 997, "application/pdf", budget_bytes=1000)

    assert result.state == "failed"
    assert result.reason == "cannot_meet_budget"
    assert result.content_type == "application/pdf"


@pytest.mark.parametrize("content_type", ["text/plain", "text/vcard", "application/x-unknown"])
def test_small_non_media_is_not_needed(content_type: str) -> None:
    assert optimize(b"BEGIN:VCARD\nEND:VCARD\n", content_type).state == "not_needed"


def test_default_budget_is_one_mebibyte() -> None:
    assert optimize(b"x" * 1_048_576, "text/plain").state == "not_needed"
    assert optimize(b"x" * 1_048_577, "text/plain").state == "failed"


def test_result_is_frozen_and_records_elapsed_time() -> None:
    result = optimize(b"hello", "text/plain")

    assert isinstance(result, Result)
    assert result.elapsed_ms >= 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.state = "failed"  # type: ignore[misc]


def test_invalid_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        optimize(b"x", "text/plain", budget_bytes=0)
