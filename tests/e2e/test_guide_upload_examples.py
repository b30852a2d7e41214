"""The guide's four upload examples, as written, against the local host with only the host changed."""

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from azure.storage.blob import AccessPolicy

from shared import admin
from shared.app import App
from shared.media.store import MediaStore
from shared.settings import Settings
from tests import samples
from tools.azurite import ROOT

CURL_EXAMPLE = r"""
BASE64_IMAGE=$(base64 -i image.jpg)
curl -X POST https://api.approvedcontact.com/api/v1/media \
-u "your-email@example.com:your-password" \
-H "Content-Type: application/json" \
-d "{
\"phoneNumber\": \"+15551234567\",
\"fileName\": \"product-image.jpg\",
\"contentType\": \"image/jpeg\",
\"data\": \"$BASE64_IMAGE\",
\"tenantId\": \"00000000-0000-0000-0000-000000000000\"
}"
"""

NODE_EXAMPLE = r"""
const fs = require('fs');
const axios = require('axios');
// Read file as buffer and convert to byte array
const fileBuffer = fs.readFileSync('image.jpg');
const byteArray = Array.from(fileBuffer);
const credentials = Buffer.from('your-email@example.com:your-password').toString('base64');
axios.post(
'https://api.approvedcontact.com/api/v1/media',
{
phoneNumber: '+15551234567',
fileName: 'product-image.jpg',
contentType: 'image/jpeg',
data: byteArray,
tenantId: '00000000-0000-0000-0000-000000000000'
},
{
headers: { 'Authorization': `Basic ${credentials}` }
}
)
.then(response => {
console.log(`Uploaded: ${response.data.uri}`);
});
"""

GUIDE_HOST = "https://api.approvedcontact.com"


@pytest.fixture(scope="module")
def demo(app: App) -> dict[str, str]:
    return admin.seed_demo(app)


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.jpg"
    path.write_bytes(samples.noisy_jpeg((300, 200)))
    return path


def assert_serves(uri: str, expected: bytes) -> None:
    fetched = requests.get(uri, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == expected
    assert fetched.headers["Content-Type"] == "image/jpeg"


def test_curl_example_with_wrapped_base64(
    base_url: str, demo: dict[str, str], image_file: Path
) -> None:
    script = CURL_EXAMPLE.replace(GUIDE_HOST, base_url)
    out = subprocess.run(
        ["bash", "-c", script], cwd=image_file.parent, capture_output=True, check=True, timeout=60
    )
    response = json.loads(out.stdout)
    assert "fileName" in response, response
    assert response["fileName"] == "product-image.jpg"
    assert_serves(response["uri"], image_file.read_bytes())


def test_python_example_with_list_of_ints(
    base_url: str, demo: dict[str, str], image_file: Path
) -> None:
    with open(image_file, "rb") as f:
        file_bytes = f.read()
    credentials = base64.b64encode(b"your-email@example.com:your-password").decode()
    response = requests.post(
        f"{base_url}/api/v1/media",
        headers={"Authorization": f"Basic {credentials}"},
        json={
            "phoneNumber": "+15551234567",
            "fileName": "product-image.jpg",
            "contentType": "image/jpeg",
            "data": list(file_bytes),  # Convert bytes to array of integers
            "tenantId": "00000000-0000-0000-0000-000000000000",
        },
        timeout=30,
    )
    media_url = response.json()["uri"]
    assert_serves(media_url, file_bytes)


def test_csharp_example_system_text_json_body(
    base_url: str, demo: dict[str, str], image_file: Path
) -> None:
    # PostAsJsonAsync with web defaults: camelCase names, byte[] as base64, '+' escaped as \u002B.
    image_bytes = image_file.read_bytes()
    data = base64.b64encode(image_bytes).decode().replace("+", "\\u002B")
    body = (
        '{"phoneNumber":"+15551234567","fileName":"product-image.jpg","contentType":"image/jpeg",'
        f'"data":"{data}","tenantId":"00000000-0000-0000-0000-000000000000"}}'
    ).replace('"+15551234567"', '"\\u002B15551234567"')
    response = requests.post(
        f"{base_url}/api/v1/media",
        data=body.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        auth=("your-email@example.com", "your-password"),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert_serves(response.json()["uri"], image_bytes)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node is part of the quick start")
def test_node_example_with_array_from_buffer(
    base_url: str, demo: dict[str, str], image_file: Path
) -> None:
    script = image_file.parent / "upload.js"
    script.write_text(NODE_EXAMPLE.replace(GUIDE_HOST, base_url))
    out = subprocess.run(
        ["node", str(script)],
        cwd=image_file.parent,
        env={"NODE_PATH": str(ROOT / "node_modules"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
        timeout=60,
        text=True,
    )
    uri = out.stdout.strip().removeprefix("Uploaded: ")
    assert_serves(uri, image_file.read_bytes())


def test_a_second_tenants_user_is_403_on_the_demo_tenant(
    base_url: str, demo: dict[str, str], app: App, image_file: Path
) -> None:
    tenant = app.directory.create_tenant("Second Co")
    app.directory.create_user("second-e2e@example.com", "second-password")
    app.directory.grant("second-e2e@example.com", tenant.id)
    body = {
        "phoneNumber": demo["number"],
        "fileName": "x.jpg",
        "contentType": "image/jpeg",
        "data": base64.b64encode(image_file.read_bytes()).decode(),
        "tenantId": demo["tenantId"],
    }
    response = requests.post(
        f"{base_url}/api/v1/media",
        json=body,
        auth=("second-e2e@example.com", "second-password"),
        timeout=30,
    )
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_rotating_the_policy_revokes_issued_urls(
    settings: Settings, app: App, demo: dict[str, str]
) -> None:
    isolated = settings.model_copy(
        update={"media_container": "revocation-test", "sas_policy_id": "v1"}
    )
    store = MediaStore(app.storage, isolated)
    jpeg = samples.image("JPEG")
    record = store.put(
        tenant_id=demo["tenantId"], phone_number=demo["number"], file_name="a.jpg",
        original_file_name="a.jpg", content_type="image/jpeg", data=jpeg, optimization_state="not_needed",
    )  # fmt: skip
    assert requests.get(record.uri, timeout=10).content == jpeg
    # Rotation: remove the old policy (revokes), then sign new URLs under a new policy id.
    container = app.storage.blobs.get_container_client("revocation-test")
    container.set_container_access_policy({"v2": AccessPolicy(permission="r")})
    assert requests.get(record.uri, timeout=10).status_code == 403
    rotated = MediaStore(app.storage, isolated.model_copy(update={"sas_policy_id": "v2"}))
    assert requests.get(rotated.sign(record.blob_name), timeout=10).content == jpeg


def test_sas_url_is_read_only_and_blob_scoped(app: App, demo: dict[str, str]) -> None:
    record = app.media.put(
        tenant_id=demo["tenantId"], phone_number=demo["number"], file_name="b.jpg",
        original_file_name="b.jpg", content_type="image/jpeg", data=samples.image("JPEG"),
        optimization_state="not_needed",
    )  # fmt: skip
    base, _, query = record.uri.partition("?")
    assert "si=media-read-v1" in query and "sr=b" in query
    put = requests.put(record.uri, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert put.status_code == 403
    sibling = base.rsplit("/", 1)[0] + "/other.jpg?" + query
    assert requests.get(sibling, timeout=10).status_code == 403
