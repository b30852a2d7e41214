"""Video becomes H.264/AAC MP4 with faststart at 480p-720p, sized from its duration."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import pytest

from shared.optimize import optimize


def describe(data: bytes | None) -> str:
    """ffmpeg's own report on an MP4 (there is no ffprobe in the static build)."""
    assert data is not None
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "out.mp4"
        path.write_bytes(data)
        report = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
            capture_output=True,
            check=False,
        )
    return report.stderr.decode()


def moov_before_mdat(data: bytes) -> bool:
    return 0 <= data.find(b"moov") < data.find(b"mdat")


def test_720p_mp4_becomes_480p_h264_aac_with_faststart(mp4_720p: bytes) -> None:
    result = optimize(mp4_720p, "video/mp4", budget_bytes=300_000)

    assert result.state == "optimized", result.detail
    assert result.content_type == "video/mp4"
    assert (result.new_bytes or 0) <= 300_000 < len(mp4_720p)
    assert (result.width, result.height) == (852, 480)
    assert result.duration_s == pytest.approx(2.0, abs=0.2)
    report = describe(result.data)
    assert "Video: h264 (Main)" in report
    assert "yuv420p" in report
    assert "SAR 1:1" in report
    assert "Audio: aac" in report
    assert moov_before_mdat(result.data or b"")


def test_generous_budget_for_a_short_clip_allows_720p(mp4_720p: bytes) -> None:
    result = optimize(mp4_720p, "video/mp4", budget_bytes=len(mp4_720p) - 1)

    assert result.state == "optimized", result.detail
    assert (result.width, result.height) == (1280, 720)


def test_quicktime_input_becomes_mp4(mov_720p: bytes) -> None:
    result = optimize(mov_720p, "video/quicktime", budget_bytes=300_000)

    assert result.state == "optimized", result.detail
    assert result.content_type == "video/mp4"
    assert result.original_type == "video/quicktime"


def test_avi_input_becomes_mp4_without_upscaling(avi_360p: bytes) -> None:
    result = optimize(avi_360p, "video/x-msvideo", budget_bytes=200_000)

    assert result.state == "optimized", result.detail
    assert (result.width, result.height) == (640, 360)
    assert "Audio: aac" in describe(result.data)


def test_rotated_phone_video_stays_portrait_with_even_sides(mp4_rotated: bytes) -> None:
    result = optimize(mp4_rotated, "video/mp4", budget_bytes=150_000)

    assert result.state == "optimized", result.detail
    assert (result.width, result.height) == (360, 640)
    assert "Audio:" not in describe(result.data)


def test_video_too_long_for_the_floor_bitrate_fails_without_transcoding(
    mp4_720p: bytes,
) -> None:
    result = optimize(mp4_720p, "video/mp4", budget_bytes=20_000)

    assert (result.state, result.reason) == ("failed", "cannot_meet_budget")
    assert result.elapsed_ms < 2000


def test_video_within_budget_is_not_needed(mp4_720p: bytes) -> None:
    result = optimize(mp4_720p, "video/mp4", budget_bytes=len(mp4_720p))

    assert result.state == "not_needed"
    assert result.content_type == "video/mp4"


def test_transcode_past_the_deadline_is_killed_and_fails_with_timeout(mp4_720p: bytes) -> None:
    result = optimize(mp4_720p, "video/mp4", budget_bytes=300_000, timeout_s=0.15)

    assert (result.state, result.reason) == ("failed", "timeout")
