"""Still images: decode under a pixel limit, orient, fit, strip metadata and encode to budget.

Metadata policy: EXIF (GPS included), XMP, comments and text chunks are never written. An
embedded ICC profile is used to convert the pixels to sRGB and is then dropped, so wide-gamut
phone photos keep their colours on handsets that ignore profiles.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from PIL import ExifTags, Image, ImageCms

from shared.optimize.deadline import Deadline
from shared.optimize.result import OptimizeFailed, Reencoded

# Decoded pixels per frame (8000x5000, ~120 MB as RGB). Checked against the header before any
# pixel is decoded; for JPEG against the size after DCT scaling, which is what gets allocated.
MAX_PIXELS = 40_000_000
JPEG_QUALITIES = (80, 75, 70, 65, 60)
WEBP_QUALITIES = (80, 75, 70, 65, 60)
# Below this the picture is no longer worth sending, so the budget is declared unreachable.
MIN_LONG_SIDE = 160
# A graphic repeats a few colours; a photo shows thousands even in a small nearest-neighbour sample.
GRAPHIC_SAMPLE_SIDE = 128
GRAPHIC_MAX_COLOURS = 1024
# Any greyscale picture has at most 256 levels, so greys need a stricter bar.
GRAPHIC_MAX_GREYS = 48
# Only these decoders may run on untrusted bytes, whatever the declared type says.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}

# What Pillow raises for malformed or truncated input, at open or at load.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
)

# Same table as ImageOps.exif_transpose; applied to the fitted image, which moves far fewer pixels.
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

Kind = Literal["photo", "graphic", "webp"]
Encoder = Callable[[Image.Image], tuple[bytes, str]]


@contextmanager
def open_image(data: bytes) -> Iterator[Image.Image]:
    """Open (header only) with the allowed decoders; Pillow failures become `OptimizeFailed`."""
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x its global limit; make that a failure without
        # touching Image.MAX_IMAGE_PIXELS, which the rest of the process may rely on. The filter
        # is narrowed to this one category, so a concurrent thread restoring filters out of order
        # can at worst leave bomb warnings as errors.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
                yield img
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise OptimizeFailed("decompression_bomb", str(exc)) from exc
        except DECODE_ERRORS as exc:
            raise OptimizeFailed("corrupt_file", f"{type(exc).__name__}: {exc}") from exc


def check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise OptimizeFailed("corrupt_file", f"image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise OptimizeFailed(
            "decompression_bomb", f"{width}x{height} exceeds {MAX_PIXELS} decoded pixels"
        )


def fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """Largest size within max_side x max_side with the same aspect; never enlarges."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def scale_down(size: tuple[int, int], factor: float) -> tuple[int, int]:
    width, height = size
    return max(1, round(width * factor)), max(1, round(height * factor))


def resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    if img.size == size:
        return img
    # reducing_gap lets Pillow box-reduce by an integer factor before Lanczos: a 3000 px
    # screenshot costs half the time, with a mean difference from a full Lanczos under 1/255.
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.0)


def resizable(img: Image.Image) -> Image.Image:
    """Convert modes Pillow can only resize with NEAREST (palette, 1-bit, 16-bit) to RGB(A)/L."""
    if img.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return img
    if img.mode == "1":
        return img.convert("L")
    has_alpha = "A" in img.getbands() or "transparency" in img.info
    return img.convert("RGBA" if has_alpha else "RGB")


def drop_unused_alpha(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA") and img.getchannel("A").getextrema()[0] == 255:
        return img.convert(img.mode[:-1])
    return img


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA")


def orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except DECODE_ERRORS:
        # A mangled EXIF block is no reason to refuse the picture; it is stripped anyway.
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION_TRANSPOSE else 1


def apply_orientation(img: Image.Image, value: int) -> Image.Image:
    method = _ORIENTATION_TRANSPOSE.get(value)
    return img if method is None else img.transpose(method)


def to_srgb(img: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Bake an embedded profile into the pixels; an unusable profile is dropped, not fatal."""
    if icc_profile and img.mode in ("RGB", "RGBA", "CMYK"):
        try:
            converted = ImageCms.profileToProfile(
                img,
                ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGBA" if img.mode == "RGBA" else "RGB",
            )
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None
        if converted is not None:
            return converted
    return img.convert("RGB") if img.mode == "CMYK" else img


def looks_like_graphic(source: Image.Image, fitted: Image.Image) -> bool:
    """Screenshots, logos and diagrams: real transparency, or few distinct colours in a
    nearest-neighbour sample of the source (resampling would invent in-between colours)."""
    if has_alpha(fitted):
        return True
    sample = source.resize(
        (min(source.width, GRAPHIC_SAMPLE_SIDE), min(source.height, GRAPHIC_SAMPLE_SIDE)),
        Image.Resampling.NEAREST,
    )
    if sample.mode in ("L", "LA"):
        return sample.convert("L").getcolors(maxcolors=GRAPHIC_MAX_GREYS) is not None
    return sample.convert("RGB").getcolors(maxcolors=GRAPHIC_MAX_COLOURS) is not None


def bare(img: Image.Image) -> Image.Image:
    """Forget inherited metadata: some encoders (PNG's ICC, GIF's comment) read `info`."""
    img.info = {}
    return img


def flatten(img: Image.Image) -> Image.Image:
    if not has_alpha(img):
        return img
    background = Image.new("RGB" if img.mode == "RGBA" else "L", img.size, "white")
    background.paste(img, mask=img.getchannel("A"))
    return background


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    # No optimize=True: its ~5% saving costs ~6% more time, and the quality ladder below
    # already does the budget's work (libvips skips it by default too).
    bare(flatten(img)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def encode_png_palette(img: Image.Image) -> bytes:
    if img.mode in ("L", "LA"):
        reduced = img
    else:
        # Median cut keeps flat UI colours exact; it cannot do alpha, fast octree can.
        method = Image.Quantize.FASTOCTREE if img.mode == "RGBA" else Image.Quantize.MEDIANCUT
        reduced = img.quantize(256, method=method)
    buffer = io.BytesIO()
    bare(reduced).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def encode_webp(img: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    bare(img).save(buffer, "WEBP", quality=quality, method=4)
    return buffer.getvalue()


def encoders(kind: Kind) -> list[Encoder]:
    """Candidates in order of preference for one size; the first within budget wins."""

    def jpeg(quality: int) -> Encoder:
        return lambda img: (encode_jpeg(img, quality), "image/jpeg")

    def webp(quality: int) -> Encoder:
        return lambda img: (encode_webp(img, quality), "image/webp")

    jpegs = [jpeg(q) for q in JPEG_QUALITIES]
    if kind == "photo":
        return jpegs
    if kind == "webp":
        return [webp(q) for q in WEBP_QUALITIES]
    return [lambda img: (encode_png_palette(img), "image/png"), *jpegs]


def encode_within_budget(
    fitted: Image.Image, kind: Kind, *, budget: int, deadline: Deadline
) -> Reencoded:
    """Walk the encoder ladder; when no rung fits, shrink the picture and walk it again."""
    current = fitted
    while True:
        smallest = math.inf
        for encoder in encoders(kind):
            deadline.check()
            data, content_type = encoder(current)
            if len(data) <= budget:
                return Reencoded(data, content_type, current.width, current.height)
            smallest = min(smallest, len(data))
        if max(current.size) <= MIN_LONG_SIDE:
            raise OptimizeFailed(
                "cannot_meet_budget", f"{smallest} bytes at {current.width}x{current.height}"
            )
        # Bytes grow roughly with area, so aim the side at the square root of the overshoot.
        factor = min(0.9, max(0.5, 0.95 * math.sqrt(budget / smallest)))
        width, height = scale_down(current.size, factor)
        floor = MIN_LONG_SIDE / max(width, height)
        if floor > 1:
            width, height = scale_down((width, height), floor)
        current = resize(fitted, (width, height))


def still_kind(fmt: str, source: Image.Image, fitted: Image.Image) -> Kind:
    if fmt == "WEBP":
        return "webp"
    if fmt == "JPEG":
        return "photo"
    if fmt == "GIF":
        return "graphic"
    return "graphic" if looks_like_graphic(source, fitted) else "photo"


def optimize_still(
    img: Image.Image, fmt: str, *, budget: int, max_side: int, deadline: Deadline
) -> Reencoded:
    turn = orientation(img)
    icc_profile = img.info.get("icc_profile")
    target = fit(img.size, max_side)
    if fmt == "JPEG":
        # DCT scaling decodes straight to >= target size: the single biggest saving for photos.
        img.draft("RGB", target)
    check_pixels(img.size)
    img.load()
    deadline.check()
    source = resizable(img)
    fitted = resize(source, target)
    fitted = to_srgb(fitted, icc_profile if isinstance(icc_profile, bytes) else None)
    fitted = drop_unused_alpha(apply_orientation(fitted, turn))
    deadline.check()
    return encode_within_budget(
        fitted, still_kind(fmt, source, fitted), budget=budget, deadline=deadline
    )
