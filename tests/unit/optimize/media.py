"""Builders for generated test media: images with Pillow, clips and sounds with ffmpeg's lavfi
sources, and hand-crafted hostile files. Nothing here is checked in as a binary."""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import imageio_ffmpeg
from PIL import Image, ImageChops, ImageDraw


def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(size: tuple[int, int]) -> Image.Image:
    """Gradients under grain: many colours and JPEG-like entropy, deterministic per size."""
    width, height = size
    gradient = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    blotches = Image.effect_noise((max(1, width // 16), max(1, height // 16)), 60).resize(size)
    grain = Image.effect_noise(size, 10)
    return Image.merge(
        "RGB",
        (
            ImageChops.add(gradient, grain),
            ImageChops.blend(radial, blotches, 0.5),
            ImageChops.add(ImageChops.invert(gradient), grain),
        ),
    )


def smooth_photo(size: tuple[int, int]) -> Image.Image:
    """A noise-free picture, so resampling differences are measurable against a reference."""
    gradient = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    return Image.merge("RGB", (gradient, radial, ImageChops.invert(gradient)))


def screenshot(size: tuple[int, int]) -> Image.Image:
    img = Image.new("RGB", size, (245, 246, 248))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, size[0], 80), fill=(30, 100, 210))
    for top in range(120, size[1] - 60, 90):
        draw.rectangle((30, top, size[0] - 30, top + 70), fill=(255, 255, 255))
        draw.ellipse((45, top + 10, 95, top + 60), fill=(200, 140, 90))
        draw.text((120, top + 25), "Hello from a screenshot", fill=(40, 40, 48))
    return img


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_bomb(width: int, height: int, *, real_pixels: bool = True) -> bytes:
    """A valid 1-bit greyscale PNG: a few KB on disk, width*height pixels once decoded."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    if real_pixels:
        compressor = zlib.compressobj(9)
        row = b"\x00" * (1 + (width + 7) // 8)
        body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    else:
        body = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", body)
        + png_chunk(b"IEND", b"")
    )


def gif_bomb(width: int, height: int) -> bytes:
    """A one-pixel GIF whose logical screen claims width x height."""
    data = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def webp_bomb(width: int, height: int) -> bytes:
    """A lossless WebP whose VP8L header claims width x height (max 16384 each)."""
    data = bytearray(encode(Image.new("RGB", (1, 1), "red"), "WEBP", lossless=True))
    payload = data.index(b"VP8L") + 8
    assert data[payload] == 0x2F
    bits = int.from_bytes(data[payload + 1 : payload + 5], "little")
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    data[payload + 1 : payload + 5] = bits.to_bytes(4, "little")
    return bytes(data)


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def clip(
    target: Path,
    *,
    size: str = "1280x720",
    seconds: float = 2,
    audio: bool = True,
    video_codec: tuple[str, ...] = ("-c:v", "libx264", "-preset", "ultrafast", "-b:v", "4M"),
    audio_codec: tuple[str, ...] = ("-c:a", "aac", "-b:a", "128k"),
    fmt: str = "mp4",
) -> bytes:
    """testsrc2 with grain (so it is heavy, like camera footage) and, optionally, a tone."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    ffmpeg(
        *inputs,
        "-vf",
        "noise=alls=20:allf=t",
        *video_codec,
        "-pix_fmt",
        "yuv420p",
        *(audio_codec if audio else ("-an",)),
        "-f",
        fmt,
        str(target),
    )
    return target.read_bytes()


def tone(target: Path, *, seconds: float, codec: tuple[str, ...], fmt: str) -> bytes:
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=330:duration={seconds}",
        "-ac",
        "2",
        "-ar",
        "44100",
        *codec,
        "-f",
        fmt,
        str(target),
    )
    return target.read_bytes()
