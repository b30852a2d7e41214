from datetime import UTC, datetime, timedelta, timezone

from shared.clock import now_iso, rfc3339


def test_timestamps_are_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2025, 1, 11, 10, 15, 31, 123456, tzinfo=UTC)
    assert rfc3339(moment) == "2025-01-11T10:15:31.123Z"


def test_other_offsets_are_converted_to_utc() -> None:
    moment = datetime(2025, 1, 11, 12, 15, 31, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2025-01-11T10:15:31.000Z"


def test_now_reads_back_as_an_aware_datetime() -> None:
    parsed = datetime.fromisoformat(now_iso())
    assert parsed.tzinfo is not None
    assert abs(datetime.now(UTC) - parsed) < timedelta(seconds=5)
