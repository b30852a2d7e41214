"""Safe blob names from customer-supplied file names."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 128
_UNSAFE = re.compile(r'[/\\:*?"<>|#%&{}$!\'@+`=;]')


def sanitise(file_name: str) -> str:
    """A name with no separators, traversal, control, format (bidi, zero-width) or URL-special
    characters, bounded in length with its extension kept. Never empty."""
    name = unicodedata.normalize("NFC", file_name)
    name = "".join("_" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in name)
    name = _UNSAFE.sub("_", name)
    name = re.sub(r"\.{2,}", ".", name)
    cleaned = re.sub(r"\s+", " ", name)
    name = cleaned.strip(" ._")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        # A bare extension such as ".jpg" (what the extension check read it as) stays one.
        bare = name.isalnum() and cleaned.rstrip(" ._").endswith("." + name)
        stem, ext = ("", name) if bare else (name, "")
    ext = ext[:16]
    stem = stem.strip(" ._") or "file"
    limit = MAX_NAME - (len(ext) + 1 if ext else 0)
    stem = stem[:limit].rstrip(" ._") or "file"
    return f"{stem}.{ext}" if ext else stem
