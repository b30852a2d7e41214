"""The entry point: route bytes by their declared type to the image, video or audio pipeline,
and turn whatever happens into a `Result` (a bad file is a failed result, never an exception)."""

from __future__ import annotations

import logging
import time

from shared.media.types import HEIF_TYPES, SUPPORTED, canonical, compatible, sniff
from shared.optimize.animations import is_animation, optimize_animation
from shared.optimize.audio import optimize_audio
from shared.optimize.deadline import Deadline
from shared.optimize.images import check_pixels, open_image, optimize_still
from shared.optimize.result import OptimizeFailed, Reencoded, Result, Untouched
from shared.optimize.video import optimize_video

logger = logging.getLogger(__name__)

# What the optimiser can rewrite, read from the one type table (HEIC is converted on upload).
IMAGE_TYPES = frozenset(
    t.mime for t in SUPPORTED.values() if t.kind == "image" and t.mime not in HEIF_TYPES
)
VIDEO_DEMUXERS = {t.mime: t.demuxer for t in SUPPORTED.values() if t.kind == "video" and t.demuxer}
AUDIO_DEMUXERS = {t.mime: t.demuxer for t in SUPPORTED.values() if t.kind == "audio" and t.demuxer}
SUPPORTED_TYPES = IMAGE_TYPES | VIDEO_DEMUXERS.keys() | AUDIO_DEMUXERS.keys()


def optimize(
    data: bytes,
    content_type: str,
    *,
    budget_bytes: int = 1_048_576,
    max_side: int = 1024,
    timeout_s: float = 120,
) -> Result:
    """Make `data` fit `budget_bytes` (and, for images, `max_side` on the long side).

    Files already within limits are `not_needed`; types we cannot shrink are `not_needed` under
    the budget and `failed`/`cannot_meet_budget` over it. Raises only for invalid arguments.
    """
    if budget_bytes < 1 or max_side < 1 or timeout_s <= 0:
        raise ValueError("budget_bytes, max_side and timeout_s must be positive")
    started = time.perf_counter()
    deadline = Deadline(timeout_s)

    def finish(outcome: Reencoded | Untouched | OptimizeFailed) -> Result:
        return _result(outcome, data, content_type, (time.perf_counter() - started) * 1000)

    try:
        outcome = _route(data, canonical(content_type), budget_bytes, max_side, deadline)
        if isinstance(outcome, Reencoded) and len(outcome.data) > budget_bytes:
            raise OptimizeFailed("cannot_meet_budget", f"{len(outcome.data)} bytes came out")
        return finish(outcome)
    except OptimizeFailed as failure:
        return finish(failure)
    except Exception as exc:
        # The blob trigger must record an outcome, not retry a poisoned file forever.
        logger.exception("media optimisation crashed")
        return finish(OptimizeFailed("internal_error", type(exc).__name__))


def _result(
    outcome: Reencoded | Untouched | OptimizeFailed,
    data: bytes,
    content_type: str,
    elapsed_ms: float,
) -> Result:
    if isinstance(outcome, Reencoded):
        return Result(
            state="optimized",
            data=outcome.data,
            content_type=outcome.content_type,
            original_type=content_type,
            original_bytes=len(data),
            new_bytes=len(outcome.data),
            width=outcome.width,
            height=outcome.height,
            duration_s=outcome.duration_s,
            reason=None,
            elapsed_ms=elapsed_ms,
        )
    failure = outcome if isinstance(outcome, OptimizeFailed) else None
    measured = outcome if isinstance(outcome, Untouched) else Untouched()
    return Result(
        state="failed" if failure else "not_needed",
        data=None,
        content_type=content_type,
        original_type=content_type,
        original_bytes=len(data),
        new_bytes=None,
        width=measured.width,
        height=measured.height,
        duration_s=measured.duration_s,
        reason=failure.reason if failure else None,
        elapsed_ms=elapsed_ms,
        detail=failure.detail if failure else "",
    )


def _route(
    data: bytes, kind: str, budget: int, max_side: int, deadline: Deadline
) -> Reencoded | Untouched:
    if kind in IMAGE_TYPES:
        return _optimize_image(data, budget=budget, max_side=max_side, deadline=deadline)
    demuxer = VIDEO_DEMUXERS.get(kind) or AUDIO_DEMUXERS.get(kind)
    if demuxer and not compatible(kind, sniff(data)):
        # Checked even under budget: a playlist or script posing as media is worth recording.
        raise OptimizeFailed("unsupported_container", f"not a {demuxer} file")
    if len(data) <= budget:
        return Untouched()
    if kind in VIDEO_DEMUXERS:
        return optimize_video(data, VIDEO_DEMUXERS[kind], budget=budget, deadline=deadline)
    if kind in AUDIO_DEMUXERS:
        return optimize_audio(data, AUDIO_DEMUXERS[kind], budget=budget, deadline=deadline)
    raise OptimizeFailed("cannot_meet_budget", f"{kind or 'unknown type'} cannot be shrunk")


def _optimize_image(
    data: bytes, *, budget: int, max_side: int, deadline: Deadline
) -> Reencoded | Untouched:
    # Images are opened even when small: a tiny file can declare a gigapixel canvas.
    with open_image(data) as img:
        fmt = img.format or ""
        if fmt != "JPEG":
            # JPEG is checked after DCT scaling instead, which is what will be allocated.
            check_pixels(img.size)
        width, height = img.size
        if len(data) <= budget and max(width, height) <= max_side:
            return Untouched(width, height)
        deadline.check()
        if is_animation(img, fmt):
            return optimize_animation(
                img, fmt, data_len=len(data), budget=budget, max_side=max_side, deadline=deadline
            )
        return optimize_still(img, fmt, budget=budget, max_side=max_side, deadline=deadline)
