"""Hostile and broken files end as a `failed` result with a stable reason, never an exception."""

from __future__ import annotations

import os

import pytest
from PIL import Image, ImageFile

from shared.optimize import optimize
from tests.unit.optimize import media


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_png_decompression_bomb_fails_without_decoding(no_decoding: None) -> None:
    bomb = media.png_bomb(8000, 8000)  # 64 MP: under Pillow's own limit, over ours
    assert len(bomb) < 20_000

    result = optimize(bomb, "image/png")

    assert result.state == "failed"
    assert result.reason == "decompression_bomb"


def test_png_beyond_pillows_own_limit_fails_as_decompression_bomb(no_decoding: None) -> None:
    result = optimize(media.png_bomb(20_000, 20_000, real_pixels=False), "image/png")

    assert (result.state, result.reason) == ("failed", "decompression_bomb")


def test_png_between_pillows_warning_and_error_limits_fails_as_bomb(no_decoding: None) -> None:
    # 100 MP: Pillow only warns here; the warning must not let it through.
    result = optimize(media.png_bomb(10_000, 10_000, real_pixels=False), "image/png")

    assert (result.state, result.reason) == ("failed", "decompression_bomb")


def test_gif_bomb_fails_without_decoding(no_decoding: None) -> None:
    result = optimize(media.gif_bomb(8000, 8000), "image/gif")

    assert (result.state, result.reason) == ("failed", "decompression_bomb")


def test_webp_bomb_fails_without_decoding(no_decoding: None) -> None:
    result = optimize(media.webp_bomb(8000, 8000), "image/webp")

    assert (result.state, result.reason) == ("failed", "decompression_bomb")


def test_gif_with_too_many_frames_fails_as_decompression_bomb() -> None:
    dots = [Image.new("P", (2, 2), index % 2) for index in range(1001)]
    source = media.encode(dots[0], "GIF", save_all=True, append_images=dots[1:], optimize=False)

    result = optimize(source, "image/gif", budget_bytes=100)

    assert (result.state, result.reason) == ("failed", "decompression_bomb")


def test_truncated_jpeg_fails_as_corrupt_file() -> None:
    whole = media.encode(media.photo((2000, 1500)), "JPEG", quality=90)

    result = optimize(whole[: len(whole) * 6 // 10], "image/jpeg")

    assert (result.state, result.reason) == ("failed", "corrupt_file")


def test_random_bytes_labelled_png_fail_as_corrupt_file() -> None:
    result = optimize(os.urandom(50_000), "image/png")

    assert (result.state, result.reason) == ("failed", "corrupt_file")


def test_format_outside_the_allowed_decoders_is_not_parsed() -> None:
    # A valid BMP labelled as PNG: Pillow could read it, but only JPEG/PNG/GIF/WebP may run.
    result = optimize(media.encode(Image.new("RGB", (1500, 10)), "BMP"), "image/png")

    assert (result.state, result.reason) == ("failed", "corrupt_file")


PLAYLIST = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"


def test_m3u8_playlist_labelled_mp4_fails_as_unsupported_container() -> None:
    result = optimize(PLAYLIST, "video/mp4")

    assert (result.state, result.reason) == ("failed", "unsupported_container")


def test_playlist_behind_mp4_magic_is_refused_by_the_pinned_demuxer() -> None:
    disguised = b"\x00\x00\x00\x14ftypisom\x00\x00\x02\x00isom" + PLAYLIST * 10

    result = optimize(disguised, "video/mp4", budget_bytes=100)

    assert (result.state, result.reason) == ("failed", "corrupt_file")


def test_text_file_labelled_mp4_fails_as_unsupported_container() -> None:
    result = optimize(b"just some notes\n" * 100_000, "video/mp4")

    assert (result.state, result.reason) == ("failed", "unsupported_container")


def test_random_bytes_behind_avi_magic_fail_as_corrupt_file() -> None:
    junk = b"RIFF\x00\x10\x00\x00AVI LIST" + os.urandom(5000)

    result = optimize(junk, "video/x-msvideo", budget_bytes=100)

    assert (result.state, result.reason) == ("failed", "corrupt_file")


def test_text_labelled_mp3_fails_as_unsupported_container() -> None:
    result = optimize(b"hello", "audio/mpeg")

    assert (result.state, result.reason) == ("failed", "unsupported_container")
