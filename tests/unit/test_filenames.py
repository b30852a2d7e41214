import pytest

from shared.media.filenames import MAX_NAME, sanitise


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("product-image.jpg", "product-image.jpg"),
        ("../../etc/passwd.txt", "etc_passwd.txt"),
        ("..\\..\\win.ini.txt", "win.ini.txt"),
        ("a\x00b\x1fc.png", "a_b_c.png"),
        ("invoice\u202egnp.exe.txt", "invoice_gnp.exe.txt"),  # right-to-left override
        ("zero\u200bwidth.jpg", "zero_width.jpg"),
        ("...", "file"),
        ("..hidden.jpg", "hidden.jpg"),
        (".jpg", "file.jpg"),  # the extension survives a name that is only an extension
        ("名前.jpg", "名前.jpg"),
        ("a?b#c%d.jpg", "a_b_c_d.jpg"),
    ],
)
def test_file_names_are_made_safe(raw: str, safe: str) -> None:
    assert sanitise(raw) == safe


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = sanitise("x" * 1000 + ".jpeg")
    assert len(name) == MAX_NAME and name.endswith(".jpeg")
