"""Audio is re-encoded to a bitrate that fits: MP3 stays MP3, WAV and AAC become ADTS AAC."""

from __future__ import annotations

import pytest

from shared.optimize import optimize


def test_wav_becomes_adts_aac_within_budget(wav_6s: bytes) -> None:
    result = optimize(wav_6s, "audio/wav", budget_bytes=100_000)

    assert result.state == "optimized", result.detail
    assert result.content_type == "audio/aac"
    assert (result.new_bytes or 0) <= 100_000
    assert (result.data or b"")[:2] in (b"\xff\xf1", b"\xff\xf9")
    assert result.duration_s == pytest.approx(6.0, abs=0.5)
    assert result.width is None and result.height is None


def test_mp3_stays_mp3_without_tags(mp3_6s: bytes) -> None:
    result = optimize(mp3_6s, "audio/mpeg", budget_bytes=60_000)

    assert result.state == "optimized", result.detail
    assert result.content_type == "audio/mpeg"
    assert (result.new_bytes or 0) <= 60_000
    assert not (result.data or b"").startswith(b"ID3")
    assert result.duration_s == pytest.approx(6.0, abs=0.5)


def test_aac_is_re_encoded_to_a_lower_bitrate(aac_6s: bytes) -> None:
    result = optimize(aac_6s, "audio/aac", budget_bytes=60_000)

    assert result.state == "optimized", result.detail
    assert result.content_type == "audio/aac"
    assert (result.new_bytes or 0) <= 60_000


def test_audio_that_would_need_under_24_kbps_fails_cannot_meet_budget(wav_6s: bytes) -> None:
    result = optimize(wav_6s, "audio/wav", budget_bytes=10_000)

    assert (result.state, result.reason) == ("failed", "cannot_meet_budget")
