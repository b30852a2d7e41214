"""Benchmark of the media optimiser on realistic inputs, with pyvips as the yardstick for photos.

Run with `python -m bench.optimize`; inputs are generated on the fly (nothing is checked in), and
pyvips comes from requirements-bench.txt. Not a test: it prints a table and never fails.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageChops, ImageDraw, ImageFont

from shared.optimize import Result, optimize

TARGETS = {
    "photo": "<= 1.15x pyvips",
    "screenshot": "<= 250 ms",
    "gif": "<= 700 ms",
    "video": "faster than real time",
}


def photo_jpeg(width: int = 4032, height: int = 3024) -> bytes:
    """Smooth gradients under fine grain: compresses like a phone photo (~4 MB at q90)."""
    horizontal = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    blotches = Image.effect_noise((width // 4, height // 4), 60).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    grain = Image.effect_noise((width, height), 12)
    red = ImageChops.add(ImageChops.multiply(horizontal, blotches), grain)
    green = ImageChops.blend(radial, blotches, 0.5)
    blue = ImageChops.add(ImageChops.invert(horizontal), grain, scale=1.2)
    buffer = io.BytesIO()
    Image.merge("RGB", (red, green, blue)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def screenshot_png(side: int = 3000) -> bytes:
    """Flat panels, buttons and anti-aliased text, like a phone or desktop screenshot."""
    rng = random.Random(7)
    img = Image.new("RGB", (side, side), (246, 247, 249))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=28)
    draw.rectangle((0, 0, side, 120), fill=(32, 99, 210))
    for row in range(24):
        top = 160 + row * 118
        draw.rounded_rectangle((40, top, side - 40, top + 100), 18, fill=(255, 255, 255))
        draw.ellipse((60, top + 15, 130, top + 85), fill=(rng.randrange(256), 140, 90))
        for line in range(2):
            words = " ".join(f"word{rng.randrange(1000)}" for _ in range(rng.randrange(6, 14)))
            draw.text((160, top + 18 + line * 38), words, fill=(40, 40, 48), font=font)
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


def animated_gif(frames: int = 60, size: tuple[int, int] = (800, 600)) -> bytes:
    """A camera pan over soft colour fields with a bouncing ball, like a clip turned into a GIF:
    every frame differs everywhere (~6 MB)."""
    width, height = size
    field = Image.effect_noise((width // 40, height // 40), 80).resize(
        (width * 2, height * 2), Image.Resampling.BICUBIC
    )
    scene = Image.merge(
        "RGB",
        (field, ImageChops.invert(field), Image.linear_gradient("L").resize(field.size)),
    )
    pictures = []
    for index in range(frames):
        frame = scene.crop((index * 6, index * 4, index * 6 + width, index * 4 + height))
        draw = ImageDraw.Draw(frame)
        x = int((width - 120) * (0.5 + 0.5 * math.sin(index / 6)))
        y = int((height - 120) * abs(math.sin(index / 9)))
        draw.ellipse((x, y, x + 120, y + 120), fill=(230, 60, 40))
        pictures.append(frame)
    buffer = io.BytesIO()
    pictures[0].save(buffer, "GIF", save_all=True, append_images=pictures[1:], duration=50, loop=0)
    return buffer.getvalue()


def clip_mp4(seconds: int = 12) -> bytes:
    """720p30 with grain and a tone, encoded at phone-like bitrate."""
    with tempfile.TemporaryDirectory() as workdir:
        target = Path(workdir) / "clip.mp4"
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
                "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
                "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                "-vf", "noise=alls=12:allf=t", "-c:v", "libx264", "-preset", "veryfast",
                "-b:v", "6M", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
                "-shortest", "-y", str(target),
            ],
            check=True,
        )  # fmt: skip
        return target.read_bytes()


@dataclass(frozen=True)
class Row:
    name: str
    input_bytes: int
    result: Result
    median_ms: float


def median_ms(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: imports, ffmpeg binary in page cache, Pillow plugin registration
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def pyvips_photo_ms(data: bytes, repeats: int) -> float | None:
    try:
        import pyvips  # type: ignore[import-not-found]
    except (ImportError, OSError):
        return None
    # Without this libvips answers repeats from its operation cache.
    pyvips.cache_set_max(0)

    def run() -> bytes:
        thumbnail = pyvips.Image.thumbnail_buffer(data, 1024)
        out: bytes = thumbnail.jpegsave_buffer(Q=80, keep="none")
        return out

    return median_ms(run, repeats)


def measure(name: str, data: bytes, content_type: str, repeats: int) -> Row:
    result = optimize(data, content_type)
    return Row(name, len(data), result, median_ms(lambda: optimize(data, content_type), repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per image input")
    args = parser.parse_args()

    print("generating inputs ...", flush=True)
    photo = photo_jpeg()
    rows = [
        measure("photo 4032x3024 jpeg", photo, "image/jpeg", args.repeats),
        measure("screenshot 3000x3000 png", screenshot_png(), "image/png", args.repeats),
        measure("gif 60 frames 800x600", animated_gif(), "image/gif", max(3, args.repeats // 2)),
        measure("video 12 s 720p + aac", clip_mp4(), "video/mp4", 3),
    ]
    vips_ms = pyvips_photo_ms(photo, args.repeats)

    header = f"{'input':<26} {'in size':>10} {'out':>22} {'median ms':>10}  {'note':<30}"
    print(header)
    print("-" * len(header))
    for row, target in zip(rows, TARGETS.values(), strict=True):
        result = row.result
        out = f"{result.content_type.split('/')[1]} {(result.new_bytes or 0) / 1e6:.2f} MB"
        if result.state != "optimized":
            out = f"{result.state}:{result.reason}"
        note = f"target {target}"
        if row is rows[0] and vips_ms is not None:
            note = f"{row.median_ms / vips_ms:.2f}x pyvips; {note}"
        if result.duration_s:
            note = f"{result.duration_s * 1000 / row.median_ms:.1f}x real time; {note}"
        print(
            f"{row.name:<26} {row.input_bytes / 1e6:>7.2f} MB {out:>22} "
            f"{row.median_ms:>10.0f}  {note}"
        )
    if vips_ms is None:
        print("pyvips not installed: pip install -r requirements-bench.txt")
    else:
        print(
            f"{'pyvips photo (reference)':<26} {len(photo) / 1e6:>7.2f} MB "
            f"{'jpeg q80':>22} {vips_ms:>10.0f}"
        )


if __name__ == "__main__":
    main()
