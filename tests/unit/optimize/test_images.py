"""Still images: fitting, orientation, metadata stripping, format choice and the budget ladder."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat

from shared.optimize import optimize
from tests.unit.optimize.media import encode, photo, screenshot, smooth_photo


def decoded(data: bytes | None) -> Image.Image:
    assert data is not None
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    difference = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(difference).mean) / 3


def test_large_jpeg_photo_is_fitted_to_1024_and_stays_jpeg() -> None:
    source = encode(photo((2400, 1800)), "JPEG", quality=95)

    result = optimize(source, "image/jpeg")

    assert result.state == "optimized"
    assert result.content_type == "image/jpeg"
    assert (result.width, result.height) == (1024, 768)
    assert result.new_bytes == len(result.data or b"") <= 1_048_576
    assert result.original_bytes == len(source)
    assert result.original_type == "image/jpeg"
    assert result.duration_s is None and result.reason is None
    assert decoded(result.data).size == (1024, 768)


def test_fitted_photo_matches_a_plain_lanczos_resize_within_tolerance() -> None:
    source = smooth_photo((2048, 1536))
    expected = source.resize((1024, 768), Image.Resampling.LANCZOS)

    result = optimize(encode(source, "JPEG", quality=95), "image/jpeg")

    assert result.state == "optimized"
    assert mean_abs_diff(decoded(result.data), expected) < 3.0


def test_exif_orientation_6_is_applied_to_pixels_and_dimensions() -> None:
    stored = Image.new("RGB", (1600, 1200), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 300, 300))  # red in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    source = encode(stored, "JPEG", quality=90, exif=exif)
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(source)))

    result = optimize(source, "image/jpeg")

    out = decoded(result.data)
    assert shown.size == (1200, 1600)
    assert out.size == (768, 1024)
    red, _, blue = out.convert("RGB").getpixel((out.width - 40, 40))  # type: ignore[misc]
    assert red > 200 and blue < 60, "stored top-left should show at the top right"
    red, _, blue = out.convert("RGB").getpixel((40, 40))  # type: ignore[misc]
    assert blue > 200 and red < 60
    assert out.getexif().get(0x0112) is None


def test_exif_gps_xmp_icc_and_comment_are_stripped_from_jpeg() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 0.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret-location</x:xmpmeta>'
    source = encode(
        photo((1600, 1200)),
        "JPEG",
        quality=90,
        exif=exif,
        icc_profile=icc,
        xmp=xmp,
        comment=b"secret-comment",
    )
    assert b"PhoneMaker" in source and b"secret-location" in source

    result = optimize(source, "image/jpeg")

    data = result.data or b""
    out = decoded(data)
    assert len(out.getexif()) == 0
    assert not {"exif", "icc_profile", "xmp", "comment"} & out.info.keys()
    for marker in (b"Exif\x00\x00", b"ICC_PROFILE", b"PhoneMaker", b"secret-", b"ns.adobe"):
        assert marker not in data


def test_png_text_exif_and_icc_chunks_are_stripped() -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "secret-author")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = encode(screenshot((1600, 1000)), "PNG", pnginfo=info, exif=exif, icc_profile=icc)

    result = optimize(source, "image/png")

    data = result.data or b""
    assert result.content_type == "image/png"
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP", b"secret-author"):
        assert chunk not in data


def test_screenshot_png_stays_png_with_a_palette() -> None:
    source = encode(screenshot((2400, 1600)), "PNG")

    result = optimize(source, "image/png")

    assert result.state == "optimized"
    assert result.content_type == "image/png"
    out = decoded(result.data)
    assert out.mode == "P"
    assert out.size == (1024, 683)


def test_photo_saved_as_png_becomes_jpeg() -> None:
    result = optimize(encode(photo((1500, 1000)), "PNG"), "image/png")

    assert result.state == "optimized"
    assert result.content_type == "image/jpeg"
    assert (result.width, result.height) == (1024, 683)


def test_png_transparency_survives() -> None:
    logo = Image.new("RGBA", (1400, 1400), (0, 0, 0, 0))
    logo.paste((255, 0, 0, 255), (400, 400, 1000, 1000))

    result = optimize(encode(logo, "PNG"), "image/png")

    assert result.content_type == "image/png"
    out = decoded(result.data).convert("RGBA")
    assert out.getpixel((5, 5))[3] == 0  # type: ignore[index]
    red, green, blue, alpha = out.getpixel((512, 512))  # type: ignore[misc]
    assert (red, green, blue) == (255, 0, 0) and alpha >= 250


def test_graphic_falls_back_to_jpeg_only_when_png_cannot_meet_budget() -> None:
    rng = random.Random(1)
    confetti = Image.new("P", (600, 600))
    confetti.putpalette([rng.randrange(256) for _ in range(768)])
    confetti.putdata([rng.randrange(64) for _ in range(600 * 600)])
    source = encode(confetti.convert("RGB"), "PNG")

    result = optimize(source, "image/png", budget_bytes=260_000)

    assert result.state == "optimized"
    assert result.content_type == "image/jpeg"
    assert (result.width, result.height) == (600, 600)
    assert (result.new_bytes or 0) <= 260_000


def test_static_webp_stays_webp() -> None:
    result = optimize(encode(photo((1800, 1200)), "WEBP", quality=95), "image/webp")

    assert result.state == "optimized"
    assert result.content_type == "image/webp"
    assert decoded(result.data).format == "WEBP"
    assert (result.width, result.height) == (1024, 683)


def test_photo_over_budget_at_lowest_quality_is_scaled_down_further() -> None:
    result = optimize(encode(photo((2000, 1500)), "JPEG", quality=95), "image/jpeg",
                      budget_bytes=40_000)  # fmt: skip

    assert result.state == "optimized"
    assert (result.new_bytes or 0) <= 40_000
    assert result.width is not None and result.height is not None
    assert 160 <= result.width < 1024
    assert abs(result.width / result.height - 4 / 3) < 0.01


def test_image_that_cannot_meet_a_tiny_budget_fails_cannot_meet_budget() -> None:
    result = optimize(encode(photo((800, 600)), "JPEG"), "image/jpeg", budget_bytes=500)

    assert result.state == "failed"
    assert result.reason == "cannot_meet_budget"
    assert result.data is None and result.new_bytes is None


def test_image_within_budget_but_1025_px_long_side_is_optimized() -> None:
    source = encode(screenshot((1025, 600)), "PNG")
    assert len(source) < 1_048_576

    result = optimize(source, "image/png")

    assert result.state == "optimized"
    assert result.width == 1024


def test_image_within_budget_and_1024_px_is_not_needed() -> None:
    source = encode(screenshot((1024, 600)), "PNG")

    result = optimize(source, "image/png")

    assert result.state == "not_needed"
    assert result.data is None and result.new_bytes is None
    assert result.content_type == "image/png"
    assert (result.width, result.height) == (1024, 600)


def test_alias_content_type_with_parameters_is_understood() -> None:
    result = optimize(encode(photo((1200, 900)), "JPEG"), "image/JPG; name=x.jpg")

    assert result.state == "optimized"
    assert result.original_type == "image/JPG; name=x.jpg"
    assert result.content_type == "image/jpeg"


def test_image_work_past_the_deadline_fails_with_timeout() -> None:
    result = optimize(encode(photo((1600, 1200)), "JPEG"), "image/jpeg", timeout_s=1e-9)

    assert result.state == "failed"
    assert result.reason == "timeout"
