"""Generated media shared by the optimiser tests; the slow ffmpeg-made ones are built once per
session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.optimize import media


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("optimize-media")


@pytest.fixture(scope="session")
def mp4_720p(media_dir: Path) -> bytes:
    return media.clip(media_dir / "clip.mp4")


@pytest.fixture(scope="session")
def mov_720p(media_dir: Path, mp4_720p: bytes) -> bytes:
    target = media_dir / "clip.mov"
    media.ffmpeg("-i", str(media_dir / "clip.mp4"), "-c", "copy", "-f", "mov", str(target))
    return target.read_bytes()


@pytest.fixture(scope="session")
def avi_360p(media_dir: Path) -> bytes:
    return media.clip(
        media_dir / "clip.avi",
        size="640x360",
        video_codec=("-c:v", "mpeg4", "-q:v", "2"),
        audio_codec=("-c:a", "libmp3lame", "-b:a", "192k"),
        fmt="avi",
    )


@pytest.fixture(scope="session")
def mp4_rotated(media_dir: Path) -> bytes:
    """Stored landscape 640x360, tagged to display rotated by 90 degrees, no audio."""
    source = media_dir / "plain.mp4"
    media.clip(source, size="640x360", audio=False)
    target = media_dir / "rotated.mp4"
    media.ffmpeg("-display_rotation", "90", "-i", str(source), "-c", "copy", str(target))
    return target.read_bytes()


@pytest.fixture(scope="session")
def wav_6s(media_dir: Path) -> bytes:
    return media.tone(media_dir / "tone.wav", seconds=6, codec=("-c:a", "pcm_s16le"), fmt="wav")


@pytest.fixture(scope="session")
def mp3_6s(media_dir: Path) -> bytes:
    codec = ("-c:a", "libmp3lame", "-b:a", "320k")
    return media.tone(media_dir / "tone.mp3", seconds=6, codec=codec, fmt="mp3")


@pytest.fixture(scope="session")
def aac_6s(media_dir: Path) -> bytes:
    codec = ("-c:a", "aac", "-b:a", "256k")
    return media.tone(media_dir / "tone.aac", seconds=6, codec=codec, fmt="adts")
