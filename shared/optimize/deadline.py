"""A wall-clock budget shared by every step of one optimisation pass."""

from __future__ import annotations

import time

from shared.optimize.result import OptimizeFailed


class Deadline:
    """Pillow work cannot be interrupted, so image pipelines call `check()` between steps and
    subprocesses get `remaining()` as their timeout."""

    def __init__(self, timeout_s: float) -> None:
        self._expires = time.monotonic() + timeout_s

    def remaining(self) -> float:
        return self._expires - time.monotonic()

    def check(self) -> None:
        if self.remaining() <= 0:
            raise OptimizeFailed("timeout", "time budget spent")
