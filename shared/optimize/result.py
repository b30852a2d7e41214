"""What one optimisation pass reports, shaped for the media record, plus the internal failure
signal the media pipelines raise and `optimize` turns into a `failed` result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["optimized", "not_needed", "failed"]

# Stable codes: they are stored on media records and matched on by alerts, so never rename one.
FailureCode = Literal[
    "decompression_bomb",
    "corrupt_file",
    "unsupported_container",
    "cannot_meet_budget",
    "timeout",
    "transcode_failed",
    "internal_error",
]


@dataclass(frozen=True, slots=True)
class Result:
    """Outcome of `optimize`.

    `data` and `new_bytes` are set only when `state == "optimized"`; otherwise the stored blob is
    unchanged and `content_type` equals `original_type`. `width`/`height` describe the output
    (or the source when it was left alone and could be measured); they are None for audio and for
    video that was not probed. `duration_s` is None for images. `reason` is set only on failure;
    `detail` is a short human-readable note for logs, never for clients.
    """

    state: State
    data: bytes | None
    content_type: str
    original_type: str
    original_bytes: int
    new_bytes: int | None
    width: int | None
    height: int | None
    duration_s: float | None
    reason: FailureCode | None
    elapsed_ms: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Reencoded:
    """New bytes from a media pipeline, already checked against the budget."""

    data: bytes
    content_type: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class Untouched:
    """A pipeline looked at the file and found nothing to do."""

    width: int | None = None
    height: int | None = None
    duration_s: float | None = None


class OptimizeFailed(Exception):
    """Raised inside the pipelines; `optimize` catches it, so it never reaches a caller."""

    def __init__(self, reason: FailureCode, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: FailureCode = reason
        self.detail = detail
