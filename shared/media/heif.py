"""HEIC/HEIF photos (what iPhones send) converted to JPEG on upload, metadata stripped."""

from __future__ import annotations

import io
import warnings

import pillow_heif
from PIL import Image, ImageOps

from shared.errors import UnsupportedMediaType

MAX_PIXELS = 50_000_000


def heif_to_jpeg(data: bytes, quality: int = 90) -> bytes:
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        width, height = heif.size
        if width * height > MAX_PIXELS:
            raise UnsupportedMediaType(
                f"HEIC image of {width}x{height} pixels exceeds the {MAX_PIXELS} pixel limit",
                code="image_too_many_pixels",
            )
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = heif.to_pillow()
            exif = image.getexif()
            image = ImageOps.exif_transpose(image) if exif else image
            out = io.BytesIO()
            # No exif/icc/xmp passed on: location and device data do not leave with the photo.
            image.convert("RGB").save(out, "JPEG", quality=quality, optimize=True)
    except (ValueError, OSError, RuntimeError, Image.DecompressionBombWarning):
        raise UnsupportedMediaType(
            "Declared image/heic but the file could not be decoded as HEIC",
            code="content_type_mismatch",
        ) from None
    return out.getvalue()
