import pytest

from shared.messages.segments import encoding_of, estimate_mms_bytes, segment_count


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters count twice: 160 septets
        ("€" * 81, 2),
        ("a" * 152 + "€", 1),  # 154 septets
        ("a" * 152 + "€" + "a" * 152, 3),  # 306 septets, but the escape pair cannot straddle parts
    ],
)
def test_gsm7_segments(text: str, segments: int) -> None:
    assert encoding_of(text) == "GSM-7" or not text
    assert segment_count(text) == segments


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
        ("😀" * 35, 1),  # each emoji is two UTF-16 units
        ("😀" * 36, 2),
        ("a" * 66 + "😀", 1),  # 68 units
        ("a" * 66 + "😀" + "a" * 66, 3),  # 134 units, but the surrogate pair moves whole
    ],
)
def test_ucs2_segments(text: str, segments: int) -> None:
    assert encoding_of(text) == "UCS-2"
    assert segment_count(text) == segments


def test_one_non_gsm_character_switches_the_whole_message_to_ucs2() -> None:
    assert encoding_of("Check out our new product!") == "GSM-7"
    assert encoding_of("Check out our new product ✓") == "UCS-2"


def test_mms_estimate_adds_media_and_overhead() -> None:
    assert estimate_mms_bytes("hi", [1000, 2000]) == 2 + 3000 + 600
