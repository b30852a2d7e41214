"""Login-throttle rows do not grow forever: the storage sweep removes rows idle long enough to
hold nothing (buckets drained, users no longer known), found through hourly pointers."""

from __future__ import annotations

import uuid

from shared.app import App
from shared.login_throttle import IDLE_SECONDS, ThrottleRow, ThrottleTable

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_idle_rows_are_removed_and_rows_written_since_are_kept(app: App) -> None:
    clock = Clock(T0)
    rows = ThrottleTable(app.storage, f"throttle{uuid.uuid4().hex[:12]}", clock)
    assert rows.write("a-idle", ThrottleRow(level=3.0, at=T0))
    assert rows.write("a-busy", ThrottleRow(level=1.0, at=T0))

    clock.now = T0 + 2 * 3_600  # the busy row is written again two hours later
    busy = rows.read("a-busy")
    assert rows.write("a-busy", ThrottleRow(level=2.0, at=clock.now, etag=busy.etag))

    clock.now = T0 + IDLE_SECONDS + 3_660  # past both rows' first pointers' hour
    assert rows.remove_idle() == 1
    assert rows.read("a-idle").etag is None  # gone
    assert rows.read("a-busy").level == 2.0

    clock.now = T0 + 2 * 3_600 + IDLE_SECONDS + 3_660  # past the busy row's second pointer
    assert rows.remove_idle() == 1
    assert rows.read("a-busy").etag is None


def test_nothing_is_removed_before_a_row_is_idle(app: App) -> None:
    clock = Clock(T0 + 86_400 * 30)
    rows = ThrottleTable(app.storage, f"throttle{uuid.uuid4().hex[:12]}", clock)
    assert rows.write("u-recent", ThrottleRow(level=1.0, at=clock.now))
    clock.now += IDLE_SECONDS / 2
    assert rows.remove_idle() == 0
    assert rows.read("u-recent").level == 1.0
