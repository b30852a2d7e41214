import pytest

from shared.errors import UnsupportedMediaType, ValidationFailed
from shared.media.types import check_extension, normalise_declared, sniff, verify_content
from tests import samples


@pytest.mark.parametrize(("name", "mime", "data"), samples.ALL_TYPES)
def test_every_guide_type_verifies_as_itself(name: str, mime: str, data: bytes) -> None:
    check_extension(name, mime)
    assert verify_content(data, mime) == mime


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("image/jpg", "image/jpeg"), ("audio/x-wav", "audio/wav"), ("audio/wave", "audio/wav"),
     ("text/x-vcard", "text/vcard"), ("IMAGE/PNG", "image/png"), ("text/plain; charset=utf-8", "text/plain"),
     ("image/heif", "image/heic")],
)  # fmt: skip
def test_aliases_are_normalised(alias: str, canonical: str) -> None:
    assert normalise_declared(alias) == canonical


def test_unsupported_type_names_the_declared_type() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        normalise_declared("image/bmp")
    assert caught.value.detail == "Unsupported media type: image/bmp"


def test_bytes_contradicting_the_declared_type_name_both() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        verify_content(samples.image("PNG"), "image/jpeg")
    assert "image/jpeg" in caught.value.detail and "image/png" in caught.value.detail
    assert caught.value.extra == {"declaredType": "image/jpeg", "detectedType": "image/png"}


def test_mp4_and_quicktime_are_one_container_family() -> None:
    assert verify_content(samples.iso_bmff(b"isom"), "video/quicktime") == "video/quicktime"


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (b"plain words", "image/png"),  # text posing as an image
        (samples.image("PNG"), "text/plain"),  # binary posing as text
        (b"abc\x00def", "text/plain"),  # NUL byte
        ("caf\u00e9".encode("latin-1"), "text/plain"),  # not UTF-8
        (b"BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n", "text/vcard"),  # no VERSION
        (b"just text", "text/vcard"),
        (samples.iso_bmff(b"M4A "), "audio/aac"),  # M4A is not ADTS AAC
        (samples.riff(b"WAVE"), "video/x-msvideo"),
        (samples.MP3, "audio/aac"),
    ],
)
def test_lying_content_is_415(data: bytes, declared: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        verify_content(data, declared)


def test_extension_contradicting_the_type_is_400() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_extension("photo.png", "image/jpeg")
    assert caught.value.extra["errors"][0]["field"] == "fileName"
    with pytest.raises(ValidationFailed):
        check_extension("no-extension", "image/jpeg")


def test_heic_is_recognised() -> None:
    assert sniff(samples.image("HEIF")) == "image/heic"
