"""An oversized photo uploaded over HTTP is optimised by the local host's blob trigger, and the URL
issued at upload serves the result."""

import io
from typing import Any

import requests
from PIL import Image

from shared.app import App
from tests.conftest import TenantAccount, eventually
from tests.unit.optimize import media

MB = 1_048_576


def test_uploaded_photo_is_optimised_behind_its_url_and_original_kept(
    base_url: str, app: App, account: TenantAccount
) -> None:
    photo = media.encode(media.photo((4000, 3000)), "JPEG", quality=95)
    assert len(photo) > 3 * MB
    uploaded = requests.post(
        f"{base_url}/api/v1/media",
        auth=account.auth,
        json=account.upload_json(photo),
        timeout=30,
    )
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["optimization"] == {"state": "pending"}

    def optimised() -> dict[str, Any] | None:
        item = requests.get(
            f"{base_url}/api/v1/media/{body['mediaId']}", auth=account.auth, timeout=10
        ).json()
        return item if item["optimization"]["state"] != "pending" else None

    item = eventually(optimised, timeout=20, interval=0.2)
    assert item["optimization"]["state"] == "optimized"

    served = requests.get(body["uri"], timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert len(served.content) <= MB and item["size"] == len(served.content)
    with Image.open(io.BytesIO(served.content)) as img:
        assert img.format == "JPEG" and max(img.size) <= 1024
    original = app.storage.blobs.get_blob_client(
        app.settings.originals_container, f"{body['mediaId']}/{body['fileName']}"
    )
    assert original.download_blob().readall() == photo
