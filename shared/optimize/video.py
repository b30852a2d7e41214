"""Video to a carrier-friendly MP4: H.264 main profile + AAC, faststart, square pixels, 480p-720p
on the short side, with the bitrate worked out from the duration so the file meets the budget."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from shared.optimize.deadline import Deadline
from shared.optimize.ffmpeg import MediaInfo, input_args, probe, run, tail
from shared.optimize.result import FailureCode, OptimizeFailed, Reencoded

# Longer than this is never carrier material; `-t` also caps files that lie about duration.
MAX_DURATION_S = 600
# Headroom for container overhead and x264's rate control overshoot.
SAFETY = 0.88
MIN_VIDEO_KBPS = 100
HD_VIDEO_KBPS = 1500
AUDIO_KBPS = 64
LOW_AUDIO_KBPS = 32
LOW_AUDIO_BELOW_KBPS = 400
# Each retry aims this much lower when the previous output ran over or was cut short by -fs.
RETRY_FACTOR = 0.8
MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Plan:
    video_kbps: int
    audio_kbps: int
    short_side: int


def plan(duration_s: float, has_audio: bool, budget: int, scale: float = 1.0) -> Plan:
    total_kbps = budget * 8 * SAFETY * scale / duration_s / 1000
    audio_kbps = 0
    if has_audio:
        audio_kbps = AUDIO_KBPS if total_kbps >= LOW_AUDIO_BELOW_KBPS else LOW_AUDIO_KBPS
    video_kbps = int(total_kbps - audio_kbps)
    if video_kbps < MIN_VIDEO_KBPS:
        raise OptimizeFailed(
            "cannot_meet_budget",
            f"{duration_s:.1f}s leaves {video_kbps} kb/s for video (< {MIN_VIDEO_KBPS})",
        )
    return Plan(video_kbps, audio_kbps, 720 if video_kbps >= HD_VIDEO_KBPS else 480)


def scale_filter(short_side: int) -> str:
    """Fit the short side to `short_side` (never enlarging) with even sides and square pixels.

    Written as ffmpeg expressions so they see the frame after autorotation and honour the
    source's sample aspect ratio; `iw*sar` is the displayed width.
    """
    landscape = "gte(iw*sar,ih)"
    side = short_side
    width = (
        f"if({landscape},max(2,2*trunc(min({side},ih)*iw*sar/ih/2)),"
        f"max(2,2*trunc(min({side},iw*sar)/2)))"
    )
    height = (
        f"if({landscape},max(2,2*trunc(min({side},ih)/2)),"
        f"max(2,2*trunc(min({side},iw*sar)*ih/(iw*sar)/2)))"
    )
    return f"scale=w='{width}':h='{height}':flags=bicubic,setsar=1"


def transcode_args(source: Path, demuxer: str, target: Path, budget: int, p: Plan) -> list[str]:
    audio = (
        ["-c:a", "aac", "-b:a", f"{p.audio_kbps}k", "-ac", "2" if p.audio_kbps >= 64 else "1"]
        if p.audio_kbps
        else ["-an"]
    )
    return [
        *input_args(source, demuxer),
        "-map", "0:v:0", "-map", "0:a:0?",
        "-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn",
        "-t", str(MAX_DURATION_S),
        "-vf", scale_filter(p.short_side), "-fpsmax", "30",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-level:v", "3.1",
        "-pix_fmt", "yuv420p",
        "-b:v", f"{p.video_kbps}k",
        "-maxrate", f"{p.video_kbps * 3 // 2}k", "-bufsize", f"{p.video_kbps * 2}k",
        *audio,
        "-movflags", "+faststart",
        "-fs", str(budget),
        "-loglevel", "error", "-f", "mp4", "-y", str(target),
    ]  # fmt: skip


def _complete(output: MediaInfo, expected_s: float) -> bool:
    """-fs stops the muxer silently when the size cap is hit; a short output means it did."""
    if output.duration_s is None or not output.has_video:
        return False
    return output.duration_s >= expected_s - max(0.5, 0.03 * expected_s)


def optimize_video(data: bytes, demuxer: str, *, budget: int, deadline: Deadline) -> Reencoded:
    with tempfile.TemporaryDirectory(prefix="optimize-") as workdir:
        source = Path(workdir) / "input"
        target = Path(workdir) / "output.mp4"
        source.write_bytes(data)
        info = probe(source, demuxer, deadline)
        if not info.has_video:
            # Sound alone in a video container is legal but not ours to re-wrap; no streams at
            # all means the demuxer found nothing it could read.
            reason: FailureCode = "unsupported_container" if info.has_audio else "corrupt_file"
            raise OptimizeFailed(reason, "no video stream")
        if info.duration_s is None or info.duration_s <= 0:
            raise OptimizeFailed("corrupt_file", "duration unknown")
        if info.duration_s > MAX_DURATION_S:
            raise OptimizeFailed("cannot_meet_budget", f"{info.duration_s:.0f}s is too long")
        scale = 1.0
        for _ in range(MAX_ATTEMPTS):
            p = plan(info.duration_s, info.has_audio, budget, scale)
            done = run(transcode_args(source, demuxer, target, budget, p), deadline)
            if done.returncode != 0:
                raise OptimizeFailed("transcode_failed", tail(done.stderr))
            output = probe(target, "mov", deadline)
            size = target.stat().st_size
            if size <= budget and _complete(output, info.duration_s):
                return Reencoded(
                    target.read_bytes(),
                    "video/mp4",
                    output.width,
                    output.height,
                    output.duration_s,
                )
            scale *= RETRY_FACTOR
    raise OptimizeFailed("cannot_meet_budget", f"still over {budget} bytes after {MAX_ATTEMPTS}")
