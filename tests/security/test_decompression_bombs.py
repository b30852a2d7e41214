"""Decompression bombs of genuine type are accepted (the bytes are what they claim), then the
local host's blob trigger runs the optimiser, which records `failed` / `decompression_bomb`
without decoding them; the stored file stays exactly as uploaded."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import requests

from shared.app import App
from tests.conftest import TenantAccount, eventually
from tests.security.conftest import expect, post_media, upload_body
from tests.unit.optimize import media

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("bomb", "file_name", "content_type"),
    [
        pytest.param(media.png_bomb(8000, 8000), "bomb.png", "image/png", id="png-64mp"),
        pytest.param(
            media.png_bomb(20_000, 20_000, real_pixels=False),
            "big.png",
            "image/png",
            id="png-400mp",
        ),
        pytest.param(media.gif_bomb(8000, 8000), "bomb.gif", "image/gif", id="gif"),
        pytest.param(media.webp_bomb(16_000, 16_000), "bomb.webp", "image/webp", id="webp"),
    ],
)
def test_bomb_is_accepted_then_recorded_failed_with_the_file_intact(
    base_url: str, app: App, account: TenantAccount, bomb: bytes, file_name: str, content_type: str
) -> None:
    body = upload_body(account, bomb, fileName=file_name, contentType=content_type)
    created = expect(post_media(base_url, account, json=body), 201)
    assert created["optimization"] == {"state": "pending"}
    media_id = created["mediaId"]

    def outcome() -> dict[str, Any] | None:
        shown = requests.get(f"{base_url}/api/v1/media/{media_id}", auth=account.auth, timeout=10)
        state: dict[str, Any] = expect(shown, 200)["optimization"]
        return state if state["state"] != "pending" else None

    state = eventually(outcome, timeout=30)
    assert (state["state"], state["reason"]) == ("failed", "decompression_bomb")
    served = requests.get(created["uri"], timeout=10)
    assert served.content == bomb and served.headers["Content-Type"] == content_type
    assert created["sha256"] == hashlib.sha256(bomb).hexdigest()
    original = app.storage.blobs.get_blob_client(
        app.settings.originals_container, f"{media_id}/{file_name}"
    )
    assert not original.exists()  # nothing was rewritten, so there is no second copy
