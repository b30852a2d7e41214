"""The one way this service writes a moment: RFC 3339 in UTC, millisecond precision, `Z`.

Every timestamp in a response, a webhook or a stored row comes from here, so two endpoints never
disagree on precision or offset notation (`datetime.fromisoformat` reads it back).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """`2026-12-02T01:49:13.123Z`; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return rfc3339(utc_now())
