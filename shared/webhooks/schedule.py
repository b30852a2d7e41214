"""When to try a failed webhook again: the configured schedule, spread by random jitter so that a
receiver that comes back up is not hit by every queued retry in the same second."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

_random = secrets.SystemRandom()


def retry_delay(schedule: Sequence[int], failed_attempt: int, jitter: float) -> int | None:
    """Seconds to wait after try `failed_attempt` (1-based) failed, or None when it was the last.
    `jitter` is a fraction: 0.2 spreads each delay over +-20%."""
    if failed_attempt < 1 or failed_attempt > len(schedule):
        return None
    base = schedule[failed_attempt - 1]
    spread = base * jitter
    return max(0, round(base + _random.uniform(-spread, spread)))


def max_attempts(schedule: Sequence[int]) -> int:
    return len(schedule) + 1
