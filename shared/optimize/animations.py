"""Animated GIF, WebP and PNG: every frame, each frame's duration and the loop count survive;
frames are fitted once, then the whole animation is shrunk until it meets the budget."""

from __future__ import annotations

import io
import math
from typing import Any

from PIL import Image

from shared.optimize.deadline import Deadline
from shared.optimize.images import (
    CONTENT_TYPES,
    MIN_LONG_SIDE,
    bare,
    check_pixels,
    fit,
    resizable,
    scale_down,
)
from shared.optimize.result import OptimizeFailed, Reencoded

# Thousands of tiny frames are a bomb of their own: cap the count and the decode work.
MAX_FRAMES = 1000
MAX_SOURCE_PIXELS = 1_000_000_000
# Fitted frames are all held in memory (RGBA): 100M pixels is ~400 MB at worst.
MAX_HELD_PIXELS = 100_000_000
WEBP_QUALITIES = (80, 60)


def is_animation(img: Image.Image, fmt: str) -> bool:
    return fmt in ("GIF", "WEBP", "PNG") and bool(getattr(img, "is_animated", False))


def shrink(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    if img.size == size:
        return img
    # Bicubic rather than Lanczos: a third cheaper per frame and invisible after GIF quantising.
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


def _frame_rgb(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    frame = resizable(img)
    if frame.mode not in ("RGB", "RGBA"):
        frame = frame.convert("RGBA" if "A" in frame.getbands() else "RGB")
    fitted = shrink(frame, size)
    # The decoder reuses its buffer on the next seek, so never keep it by reference.
    return fitted.copy() if fitted is img else fitted


def read_frames(
    img: Image.Image, size: tuple[int, int], deadline: Deadline
) -> tuple[list[Image.Image], list[int]]:
    frames: list[Image.Image] = []
    durations: list[int] = []
    source_pixels = 0
    for index in range(getattr(img, "n_frames", 1)):
        deadline.check()
        img.seek(index)
        # A GIF frame may extend the canvas, so the limit is checked on every frame.
        check_pixels(img.size)
        # WebP only reports a frame's duration once the frame is loaded.
        img.load()
        source_pixels += img.width * img.height
        if source_pixels > MAX_SOURCE_PIXELS:
            raise OptimizeFailed("decompression_bomb", f"over {MAX_SOURCE_PIXELS} pixels in all")
        durations.append(int(img.info.get("duration", 0)))
        frames.append(_frame_rgb(img, size))
    if any(frame.mode == "RGBA" for frame in frames):
        frames = [frame if frame.mode == "RGBA" else frame.convert("RGBA") for frame in frames]
    return frames, durations


def _save_options(fmt: str, frames: list[Image.Image], loop: int | None) -> list[dict[str, Any]]:
    """One option set per attempt at a given size, best quality first."""
    if fmt == "GIF":
        gif: dict[str, Any] = {"optimize": True}
        if loop is not None:
            gif["loop"] = loop
        if frames[0].mode == "RGBA":
            # Frames are full composites: clearing to transparent between them is what makes a
            # pixel that turns transparent actually disappear.
            gif["disposal"] = 2
        return [gif]
    if fmt == "WEBP":
        return [{"quality": q, "method": 4, "loop": loop or 0} for q in WEBP_QUALITIES]
    return [{"optimize": True, "loop": loop or 0}]


def palettised(frames: list[Image.Image]) -> list[Image.Image]:
    """Quantise opaque frames ourselves: Pillow's default for GIF is median cut, ~20x slower
    than fast octree for no visible gain at message sizes. Transparent frames are left to
    Pillow, which knows how to reserve the transparent index."""
    if frames[0].mode != "RGB":
        return frames
    return [frame.quantize(256, method=Image.Quantize.FASTOCTREE) for frame in frames]


def encode(
    frames: list[Image.Image], durations: list[int], fmt: str, options: dict[str, Any]
) -> bytes:
    buffer = io.BytesIO()
    first, *rest = [bare(frame) for frame in (palettised(frames) if fmt == "GIF" else frames)]
    first.save(buffer, fmt, save_all=True, append_images=rest, duration=durations, **options)
    return buffer.getvalue()


def optimize_animation(
    img: Image.Image,
    fmt: str,
    *,
    data_len: int,
    budget: int,
    max_side: int,
    deadline: Deadline,
) -> Reencoded:
    frame_count = getattr(img, "n_frames", 1)
    if frame_count > MAX_FRAMES:
        raise OptimizeFailed("decompression_bomb", f"{frame_count} frames")
    loop = img.info.get("loop")
    size = fit(img.size, max_side)
    # Re-encoded bytes track area, so start near the size the budget allows instead of at the
    # largest: every attempt encodes every frame.
    estimate = data_len * (size[0] * size[1]) / (img.width * img.height)
    if estimate > budget:
        size = scale_down(size, max(0.25, math.sqrt(0.85 * budget / estimate)))
    held = frame_count * size[0] * size[1]
    if held > MAX_HELD_PIXELS:
        size = scale_down(size, math.sqrt(MAX_HELD_PIXELS / held))
    frames, durations = read_frames(img, size, deadline)
    while True:
        smallest = math.inf
        for options in _save_options(fmt, frames, loop if isinstance(loop, int) else None):
            deadline.check()
            data = encode(frames, durations, fmt, options)
            if len(data) <= budget:
                return Reencoded(data, CONTENT_TYPES[fmt], size[0], size[1])
            smallest = min(smallest, len(data))
        if max(size) <= MIN_LONG_SIDE:
            raise OptimizeFailed("cannot_meet_budget", f"{smallest} bytes at {size[0]}x{size[1]}")
        size = scale_down(size, min(0.9, max(0.5, 0.95 * math.sqrt(budget / smallest))))
        if max(size) < MIN_LONG_SIDE:
            size = scale_down(size, MIN_LONG_SIDE / max(size))
        frames = [shrink(frame, size) for frame in frames]
