"""SMS segment counting: GSM-7 (160 per message, 153 per part) when every character is in the
GSM 03.38 alphabet, otherwise UCS-2 (70, 67 UTF-16 units). Parts never split an escape pair or a
surrogate pair, as handsets reassemble them."""

from __future__ import annotations

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")  # each costs an escape plus the character


def encoding_of(text: str) -> str:
    return "GSM-7" if all(c in GSM_BASIC or c in GSM_EXTENDED for c in text) else "UCS-2"


def _units(text: str, encoding: str) -> list[int]:
    if encoding == "GSM-7":
        return [2 if c in GSM_EXTENDED else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def segment_count(text: str) -> int:
    if not text:
        return 0
    encoding = encoding_of(text)
    single, part = (160, 153) if encoding == "GSM-7" else (70, 67)
    units = _units(text, encoding)
    if sum(units) <= single:
        return 1
    segments, used = 1, 0
    for size in units:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return segments


def describe(text: str) -> dict[str, object]:
    encoding = encoding_of(text)
    return {"encoding": encoding, "segments": segment_count(text), "characters": len(text)}


def estimate_mms_bytes(body: str, media_sizes: list[int]) -> int:
    """Body plus media plus a small MIME overhead per part (headers, boundaries)."""
    overhead = 200 * (len(media_sizes) + 1)
    return len(body.encode()) + sum(media_sizes) + overhead
