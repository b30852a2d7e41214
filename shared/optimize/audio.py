"""Audio re-encoded to fit the budget: MP3 stays MP3 (when the build has LAME), everything else
becomes AAC in ADTS, which handsets play and which needs no MP4 muxing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from shared.optimize.deadline import Deadline
from shared.optimize.ffmpeg import has_encoder, input_args, probe, run, tail
from shared.optimize.result import OptimizeFailed, Reencoded

MAX_DURATION_S = 3600
SAFETY = 0.95
# Constant bitrates every MP3 and AAC decoder accepts, best first; 24 kb/s mono is the floor.
BITRATES_KBPS = (128, 96, 64, 48, 32, 24)
MAX_ATTEMPTS = 3


def _layout(kbps: int) -> tuple[str, str]:
    """Channels and sample rate that sound best at a given bitrate."""
    if kbps >= 96:
        return "2", "44100"
    if kbps >= 64:
        return "1", "44100"
    if kbps >= 32:
        return "1", "22050"
    return "1", "16000"


def encode_args(source: Path, demuxer: str, target: Path, kbps: int, mp3: bool) -> list[str]:
    channels, rate = _layout(kbps)
    codec = (
        ["-c:a", "libmp3lame", "-id3v2_version", "0", "-write_xing", "1", "-f", "mp3"]
        if mp3
        else ["-c:a", "aac", "-f", "adts"]
    )
    return [
        *input_args(source, demuxer),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1",
        "-t", str(MAX_DURATION_S),
        "-b:a", f"{kbps}k", "-ac", channels, "-ar", rate,
        *codec,
        "-loglevel", "error", "-y", str(target),
    ]  # fmt: skip


def optimize_audio(data: bytes, demuxer: str, *, budget: int, deadline: Deadline) -> Reencoded:
    mp3 = demuxer == "mp3" and has_encoder("libmp3lame")
    suffix, content_type = (".mp3", "audio/mpeg") if mp3 else (".aac", "audio/aac")
    with tempfile.TemporaryDirectory(prefix="optimize-") as workdir:
        source = Path(workdir) / "input"
        target = Path(workdir) / f"output{suffix}"
        source.write_bytes(data)
        info = probe(source, demuxer, deadline)
        if not info.has_audio:
            raise OptimizeFailed("corrupt_file", "no audio stream")
        if info.duration_s is None or info.duration_s <= 0:
            raise OptimizeFailed("corrupt_file", "duration unknown")
        if info.duration_s > MAX_DURATION_S:
            raise OptimizeFailed("cannot_meet_budget", f"{info.duration_s:.0f}s is too long")
        allowed_kbps = budget * 8 * SAFETY / info.duration_s / 1000
        candidates = [kbps for kbps in BITRATES_KBPS if kbps <= allowed_kbps][:MAX_ATTEMPTS]
        if not candidates:
            raise OptimizeFailed(
                "cannot_meet_budget", f"{info.duration_s:.1f}s needs < {BITRATES_KBPS[-1]} kb/s"
            )
        for kbps in candidates:
            done = run(encode_args(source, demuxer, target, kbps, mp3), deadline)
            if done.returncode != 0:
                raise OptimizeFailed("transcode_failed", tail(done.stderr))
            if target.stat().st_size <= budget:
                output = probe(target, "mp3" if mp3 else "aac", deadline)
                if output.duration_s is None:
                    raise OptimizeFailed("transcode_failed", "output has no duration")
                return Reencoded(target.read_bytes(), content_type, duration_s=output.duration_s)
    raise OptimizeFailed(
        "cannot_meet_budget", f"still over {budget} bytes at {candidates[-1]} kb/s"
    )
