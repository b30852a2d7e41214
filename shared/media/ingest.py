"""The one way a media file enters storage, for uploads and inbound attachments alike: the declared
type resolved, the bytes verified against it, HEIC converted to JPEG, the initial optimisation
state chosen, then the file stored under a name whose extension matches what is stored.

Every refusal is a `ServiceError` (415 for a type or content problem); nothing is stored then.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from shared.media.filenames import sanitise
from shared.media.store import MediaRecord, MediaStore
from shared.media.types import HEIF_TYPES, SUPPORTED, normalise_declared, verify_content

if TYPE_CHECKING:
    from shared.settings import Settings


class Ingest:
    def __init__(self, media: MediaStore, settings: Settings) -> None:
        self._media = media
        self._settings = settings

    def store(
        self,
        *,
        tenant_id: str,
        phone_number: str,
        file_name: str,
        declared_type: str,
        data: bytes,
        source: str = "upload",
        index: int = 0,
        optimize: bool = True,
        media_id: str | None = None,
        budget_bytes: int | None = None,
        sha256: str | None = None,
    ) -> MediaRecord:
        """Verify and store one file; `file_name` is kept as sent for the record (an unnamed file
        is the `index`-th attachment of its message, see `file_name_for`).

        `optimize=False` records the file as `not_needed`, so the optimiser leaves it as it came.
        A `media_id` derived from an Idempotency-Key's claim makes a repeated store converge on
        one media item (see `MediaStore.put`). `sha256` is the digest of `data` if known.
        """
        content_type = verify_content(data, normalise_declared(declared_type))
        converted_from = None
        if content_type in HEIF_TYPES:
            from shared.media.heif import heif_to_jpeg  # HEIC alone needs the HEIF decoder

            data, converted_from, content_type = heif_to_jpeg(data), content_type, "image/jpeg"
            sha256 = None
        state = (
            initial_optimization_state(
                content_type, data, self._settings, budget_bytes=budget_bytes
            )
            if optimize
            else "not_needed"
        )
        return self._media.put(
            tenant_id=tenant_id,
            phone_number=phone_number,
            file_name=file_name_for(file_name, content_type, index),
            original_file_name=file_name or _unnamed(index),
            content_type=content_type,
            data=data,
            optimization_state=state,
            converted_from=converted_from,
            source=source,
            media_id=media_id,
            sha256=sha256,
        )


def file_name_for(name: str, content_type: str, index: int = 0) -> str:
    """A safe name whose extension matches the stored type: handsets send names such as
    `IMG_0001` or `image.heic` (stored as JPEG), so a wrong or missing extension is replaced.
    Carriers may send no name at all: the file is then `attachment-<index + 1>`."""
    safe = sanitise(name or _unnamed(index))
    allowed = SUPPORTED[content_type].extensions
    stem, dot, ext = safe.rpartition(".")
    if dot and f".{ext.lower()}" in allowed:
        return safe
    return sanitise(f"{stem if dot else safe}{allowed[0]}")


def _unnamed(index: int) -> str:
    return f"attachment-{index + 1}"


def initial_optimization_state(
    content_type: str, data: bytes, settings: Settings, *, budget_bytes: int | None = None
) -> str:
    """`pending` when the optimiser will act: media over the carrier budget (`budget_bytes`, that
    of the number's carrier; default CARRIER_BUDGET_BYTES), or images larger than the carrier's
    preferred side. Documents are never rewritten."""
    kind = SUPPORTED[content_type].kind
    if kind == "document":
        return "not_needed"
    if len(data) > (budget_bytes or settings.carrier_budget_bytes):
        return "pending"
    if kind == "image":
        from PIL import Image  # images alone need it: imported on the first

        try:
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                if max(image.size) <= settings.max_image_side:
                    return "not_needed"
        except (OSError, ValueError, Image.DecompressionBombError):
            pass  # unreadable: the optimiser records why
        return "pending"
    return "not_needed"
