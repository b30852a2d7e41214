"""Animated GIF and WebP keep every frame, each frame's duration and the loop count."""

from __future__ import annotations

import io

from PIL import Image, ImageChops, ImageDraw

from shared.optimize import optimize
from tests.unit.optimize.media import encode

DURATIONS = [40, 80, 120, 160, 200, 240, 60, 100]


def frames(size: tuple[int, int], *, grainy: bool = False) -> list[Image.Image]:
    """Distinct frames (Pillow merges identical ones); grainy ones compress like footage."""
    grain = Image.effect_noise((size[0] // 4, size[1] // 4), 40).resize(size).convert("RGB")
    pictures = []
    for index in range(len(DURATIONS)):
        frame = Image.new("RGB", size, (20 * index, 90, 200 - 20 * index))
        if grainy:
            frame = ImageChops.add(frame, grain)
        ImageDraw.Draw(frame).ellipse((index * 40, 50, index * 40 + 200, 250), fill="yellow")
        pictures.append(frame)
    return pictures


def timeline(data: bytes | None) -> tuple[str, int, list[int], int | None, tuple[int, int]]:
    assert data is not None
    img = Image.open(io.BytesIO(data))
    durations = []
    for index in range(img.n_frames):  # type: ignore[attr-defined]
        img.seek(index)
        img.load()
        durations.append(img.info["duration"])
    return img.format or "", img.n_frames, durations, img.info.get("loop"), img.size  # type: ignore[attr-defined]


def test_animated_gif_keeps_frames_durations_and_loop() -> None:
    pictures = frames((1400, 700))
    source = encode(
        pictures[0], "GIF", save_all=True, append_images=pictures[1:], duration=DURATIONS, loop=3
    )

    result = optimize(source, "image/gif")

    assert result.state == "optimized"
    assert result.content_type == "image/gif"
    assert timeline(result.data) == ("GIF", len(DURATIONS), DURATIONS, 3, (1024, 512))


def test_animated_gif_over_budget_is_shrunk_but_still_animated() -> None:
    pictures = frames((800, 400), grainy=True)
    source = encode(pictures[0], "GIF", save_all=True, append_images=pictures[1:], duration=100)

    result = optimize(source, "image/gif", budget_bytes=len(source) // 3)

    assert result.state == "optimized"
    assert (result.new_bytes or 0) <= len(source) // 3
    fmt, count, durations, loop, size = timeline(result.data)
    assert (fmt, count, loop) == ("GIF", len(DURATIONS), None)
    assert durations == [100] * len(DURATIONS)
    assert size[0] < 800


def test_animated_webp_stays_animated_webp() -> None:
    pictures = frames((1200, 600))
    source = encode(
        pictures[0],
        "WEBP",
        save_all=True,
        append_images=pictures[1:],
        duration=DURATIONS,
        loop=2,
        lossless=True,
    )

    result = optimize(source, "image/webp")

    assert result.content_type == "image/webp"
    assert timeline(result.data) == ("WEBP", len(DURATIONS), DURATIONS, 2, (1024, 512))


def test_transparent_animated_gif_keeps_transparency() -> None:
    pictures = []
    for index in range(4):
        frame = Image.new("RGBA", (1200, 600), (0, 0, 0, 0))
        ImageDraw.Draw(frame).rectangle((index * 200, 100, index * 200 + 300, 400), fill="red")
        pictures.append(frame)
    source = encode(
        pictures[0], "GIF", save_all=True, append_images=pictures[1:], duration=100, disposal=2
    )

    result = optimize(source, "image/gif")

    assert result.data is not None
    img = Image.open(io.BytesIO(result.data))
    img.seek(3)
    last = img.convert("RGBA")
    assert last.getpixel((10, 10))[3] == 0  # type: ignore[index]
    assert last.getpixel((700, 250))[:3] == (255, 0, 0)  # type: ignore[index]
    assert last.getpixel((150, 250))[3] == 0, "frame 0's rectangle must not linger"  # type: ignore[index]
