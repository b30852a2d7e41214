"""The one media type table (the guide's 14 types plus HEIC/HEIF: aliases, extensions, kind, the
ffmpeg demuxer that reads it) and the one sniffer that names a file's real type from its bytes.

Pure: upload, inbound and the optimiser (`shared.optimize`) all read types and signatures here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import UnsupportedMediaType, ValidationFailed


@dataclass(frozen=True)
class MediaType:
    mime: str
    extensions: tuple[str, ...]
    kind: str  # image | video | audio | document
    demuxer: str | None = None  # the ffmpeg input format pinned when the optimiser decodes it


SUPPORTED: dict[str, MediaType] = {
    t.mime: t
    for t in (
        MediaType("image/jpeg", (".jpg", ".jpeg", ".jpe"), "image"),
        MediaType("image/png", (".png",), "image"),
        MediaType("image/gif", (".gif",), "image"),
        MediaType("image/webp", (".webp",), "image"),
        MediaType("video/mp4", (".mp4", ".m4v"), "video", "mov"),
        MediaType("video/quicktime", (".mov", ".qt"), "video", "mov"),
        MediaType("video/x-msvideo", (".avi",), "video", "avi"),
        MediaType("audio/mpeg", (".mp3",), "audio", "mp3"),
        MediaType("audio/wav", (".wav",), "audio", "wav"),
        MediaType("audio/aac", (".aac",), "audio", "aac"),
        MediaType("application/pdf", (".pdf",), "document"),
        MediaType("text/plain", (".txt", ".text", ".log"), "document"),
        MediaType("text/vcard", (".vcf", ".vcard"), "document"),
        # Not in the guide's table: what iPhones send. Converted to JPEG on upload.
        MediaType("image/heic", (".heic", ".heif"), "image"),
    )
}
HEIF_TYPES = frozenset({"image/heic"})

ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "video/avi": "video/x-msvideo",
    "video/msvideo": "video/x-msvideo",
    "video/vnd.avi": "video/x-msvideo",
    "audio/mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg-3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/wave": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-aac": "audio/aac",
    "audio/aacp": "audio/aac",
    "application/x-pdf": "application/pdf",
    "text/x-vcard": "text/vcard",
    "text/directory": "text/vcard",
    "image/heif": "image/heic",
    "image/heic-sequence": "image/heic",
    "image/heif-sequence": "image/heic",
}

# ISO base media brands: QuickTime, HEIF stills and sequences; the rest of ISO BMFF is MP4.
_QUICKTIME_BRANDS = {b"qt  "}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}
_AUDIO_ONLY_BRANDS = {b"M4A ", b"M4B ", b"M4P "}
_MOV_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
# MP4 and QuickTime share one container family; a .mov saved with an MP4 brand is still a movie.
_COMPATIBLE = {frozenset({"video/mp4", "video/quicktime"})}


def canonical(content_type: str) -> str:
    """The canonical spelling of a Content-Type (parameters dropped, aliases resolved); it may
    still be a type outside the table."""
    base = content_type.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def normalise_declared(content_type: str) -> str:
    """The canonical supported type for a declared Content-Type, or 415 naming the declared one."""
    canonical_type = canonical(content_type)
    if canonical_type not in SUPPORTED:
        raise UnsupportedMediaType(
            f"Unsupported media type: {content_type.strip()}", code="unsupported_media_type"
        )
    return canonical_type


def check_extension(file_name: str, mime: str) -> None:
    """An extension that contradicts the declared type is a client error (400)."""
    ext = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    allowed = SUPPORTED[mime].extensions
    if ext not in allowed:
        raise ValidationFailed.field(
            "fileName",
            f"extension {ext or '(none)'!r} does not match {mime} (expected {', '.join(allowed)})",
            code="extension_mismatch",
        )


def _riff(data: bytes) -> str | None:
    form = data[8:12]
    return {b"WEBP": "image/webp", b"AVI ": "video/x-msvideo", b"WAVE": "audio/wav"}.get(form)


def _iso_bmff(data: bytes) -> str | None:
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        compatible = {data[i : i + 4] for i in range(16, min(len(data), 64), 4)}
        if brand in _HEIF_BRANDS or (brand in {b"mif1", b"msf1"} and compatible & _HEIF_BRANDS):
            return "image/heic"
        if brand in _QUICKTIME_BRANDS:
            return "video/quicktime"
        if brand in _AUDIO_ONLY_BRANDS:
            return "audio/mp4"
        return "video/mp4"
    if data[4:8] in _MOV_ATOMS:
        return "video/quicktime"
    return None


def _mpeg_audio(data: bytes) -> str | None:
    offset = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (
            (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | data[9] & 0x7F
        )
        offset = 10 + size
        if len(data) <= offset + 1:
            return "audio/mpeg"  # a tag with nothing after it in the sniffed window
    b0, b1 = data[offset : offset + 2] if len(data) >= offset + 2 else (0, 0)
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    layer = (b1 >> 1) & 0b11
    if layer == 0b00 and (b1 & 0xF0) == 0xF0:
        return "audio/aac"  # ADTS: MPEG sync word with layer 00
    if layer == 0b01:
        return "audio/mpeg"  # Layer III
    return None


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
_VCARD_LINE = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)?(;[^:]*)?:.*$")


def sniff(data: bytes) -> str | None:
    """The real type of `data` by its signature, or None if no binary signature matches."""
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF":
        return _riff(data)
    return _iso_bmff(data) or _mpeg_audio(data)


def compatible(declared: str, actual: str | None) -> bool:
    """Do bytes sniffed as `actual` carry the (canonical) `declared` type?"""
    return actual == declared or frozenset({actual, declared}) in _COMPATIBLE


def _text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def is_vcard(text: str) -> bool:
    """RFC 6350 structure: BEGIN:VCARD, a VERSION, content lines, END:VCARD (folds joined)."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text.strip())
    lines = [line for line in re.split(r"\r?\n", unfolded) if line.strip()]
    if len(lines) < 3 or lines[0].upper() != "BEGIN:VCARD" or lines[-1].upper() != "END:VCARD":
        return False
    depth, has_version = 0, False
    for line in lines:
        upper = line.upper()
        if upper == "BEGIN:VCARD":
            depth += 1
        elif upper == "END:VCARD":
            depth -= 1
            if depth < 0:
                return False
        elif not _VCARD_LINE.match(line):
            return False
        has_version = has_version or upper.startswith("VERSION:")
    return depth == 0 and has_version


def verify_content(data: bytes, declared: str) -> str:
    """Check the bytes against the declared (canonical) type; returns the type to store.

    415 names both types when the bytes are something else; text must be UTF-8 without NUL bytes,
    and a vCard must parse as one.
    """
    actual = sniff(data)
    if declared in ("text/plain", "text/vcard"):
        if actual is not None:
            raise _mismatch(declared, actual)
        text = _text(data)
        if text is None:
            raise UnsupportedMediaType(
                f"Declared {declared} but the content is not UTF-8 text",
                code="content_type_mismatch",
            )
        if declared == "text/vcard" and not is_vcard(text):
            raise UnsupportedMediaType(
                "Declared text/vcard but the content is not a valid vCard",
                code="content_type_mismatch",
            )
        return declared
    if actual is None:
        detected = "text/plain" if _text(data) is not None else "application/octet-stream"
        raise _mismatch(declared, detected)
    if not compatible(declared, actual):
        raise _mismatch(declared, actual)
    return declared


def _mismatch(declared: str, actual: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"Declared content type {declared} does not match the file content ({actual})",
        code="content_type_mismatch",
        extra={"declaredType": declared, "detectedType": actual},
    )
