"""Small, real sample files of every supported type, generated in memory."""

from __future__ import annotations

import io
import struct

from PIL import Image


def image(
    fmt: str, size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    out = io.BytesIO()
    img = Image.new("RGB", size, colour)
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    img.save(out, fmt)
    return out.getvalue()


def noisy_jpeg(size: tuple[int, int], quality: int = 95) -> bytes:
    """A photo-like JPEG that does not compress away (random noise)."""
    import os

    img = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def iso_bmff(brand: bytes) -> bytes:
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", brand, 0, brand, b"isom")
    mdat = struct.pack(">I4s", 8 + 64, b"mdat") + bytes(64)
    return ftyp + mdat


def riff(form: bytes) -> bytes:
    body = (
        form
        + b"fmt "
        + struct.pack("<I", 16)
        + bytes(16)
        + b"data"
        + struct.pack("<I", 32)
        + bytes(32)
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(400)
AAC = b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(200)
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
TEXT = "Hello from the API — ünïcode is fine.\n".encode()
VCARD = (
    b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada Lovelace\r\nTEL;TYPE=cell:+15551234567\r\nEND:VCARD\r\n"
)

# (file name, declared type, bytes) for every type of the guide's table.
ALL_TYPES: list[tuple[str, str, bytes]] = [
    ("photo.jpg", "image/jpeg", image("JPEG")),
    ("logo.png", "image/png", image("PNG")),
    ("anim.gif", "image/gif", image("GIF")),
    ("pic.webp", "image/webp", image("WEBP")),
    ("clip.mp4", "video/mp4", iso_bmff(b"isom")),
    ("clip.mov", "video/quicktime", iso_bmff(b"qt  ")),
    ("clip.avi", "video/x-msvideo", riff(b"AVI ")),
    ("song.mp3", "audio/mpeg", MP3),
    ("voice.wav", "audio/wav", riff(b"WAVE")),
    ("voice.aac", "audio/aac", AAC),
    ("doc.pdf", "application/pdf", PDF),
    ("notes.txt", "text/plain", TEXT),
    ("contact.vcf", "text/vcard", VCARD),
]
