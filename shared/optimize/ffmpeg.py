"""Running the bundled ffmpeg on untrusted bytes: a private temp dir, a demuxer pinned to the
declared container (whose signature the router has checked), local files only, and a wall-clock
timeout."""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from shared.optimize.deadline import Deadline
from shared.optimize.result import OptimizeFailed

_DURATION = re.compile(rb"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO = re.compile(rb"Stream #0:\d+[^\n]*: Video: [^\n]*?, (\d{1,5})x(\d{1,5})[ ,\n]")
_AUDIO = re.compile(rb"Stream #0:\d+[^\n]*: Audio: ")


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What `ffmpeg -i` says about an input (there is no ffprobe in the static build)."""

    duration_s: float | None
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None


@functools.cache
def executable() -> str:
    path: str = imageio_ffmpeg.get_ffmpeg_exe()
    return path


def run(args: list[str], deadline: Deadline) -> subprocess.CompletedProcess[bytes]:
    timeout = deadline.remaining()
    if timeout <= 0:
        raise OptimizeFailed("timeout", "time budget spent before ffmpeg started")
    try:
        return subprocess.run(  # noqa: S603 - fixed executable, argument list, no shell
            [executable(), "-nostdin", "-hide_banner", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        # subprocess.run has already killed and reaped ffmpeg.
        raise OptimizeFailed("timeout", f"ffmpeg still running after {timeout:.1f}s") from exc


@functools.cache
def has_encoder(name: str) -> bool:
    listing = subprocess.run(  # noqa: S603 - fixed executable, argument list, no shell
        [executable(), "-hide_banner", "-encoders"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return (
        re.search(rb"^\s*A\S*\s+" + re.escape(name.encode()) + rb"\s", listing.stdout, re.M)
        is not None
    )


def input_args(path: Path, demuxer: str) -> list[str]:
    """Input options that keep ffmpeg on the one local file, parsed by the one expected demuxer."""
    return ["-protocol_whitelist", "file", "-f", demuxer, "-i", str(path)]


def tail(stderr: bytes, lines: int = 3) -> str:
    text = stderr.decode("utf-8", "replace").strip().splitlines()
    return " | ".join(text[-lines:])[:300]


def probe(path: Path, demuxer: str, deadline: Deadline) -> MediaInfo:
    # Without an output ffmpeg exits non-zero by design; the header report on stderr is the point.
    stderr = run(input_args(path, demuxer), deadline).stderr
    if b"Input #0" not in stderr:
        raise OptimizeFailed("corrupt_file", tail(stderr))
    duration = _DURATION.search(stderr)
    video = _VIDEO.search(stderr)
    return MediaInfo(
        duration_s=(
            int(duration[1]) * 3600 + int(duration[2]) * 60 + float(duration[3])
            if duration
            else None
        ),
        has_video=video is not None,
        has_audio=_AUDIO.search(stderr) is not None,
        width=int(video[1]) if video else None,
        height=int(video[2]) if video else None,
    )
