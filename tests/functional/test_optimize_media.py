"""The optimize_media blob trigger: `main` called with real `func.blob.InputStream` objects built
from what an upload through `upload_media.main` left in Azurite.

These tests run on their own media and originals containers: the session's local host (when
another test has started it) watches `attachments`, and must not race these direct calls.
"""

import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError
from PIL import Image

import media_item
import optimize_media
import upload_media
from shared.app import App, current, install
from shared.media import optimization
from shared.media.store import MediaStore
from shared.optimize import optimize as real_optimize
from shared.settings import Settings
from tests import samples
from tests.conftest import TenantAccount, eventually, http_request
from tests.context import invocation_context
from tests.unit.optimize import media
from tools.localhost import BLOB_POISON_QUEUE, ROOT, LocalHost, TriggerRunner

MB = 1_048_576


def isolated_app(settings: Settings) -> App:
    suffix = uuid.uuid4().hex[:8]
    changes = {"media_container": f"media-{suffix}", "originals_container": f"originals-{suffix}"}
    return App.build(Settings.model_validate({**settings.model_dump(), **changes}))


@pytest.fixture(scope="module")
def own(app: App, settings: Settings) -> Iterator[App]:
    isolated, previous = isolated_app(settings), current()
    install(isolated)
    yield isolated
    install(previous)


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    """A 4000x3000 camera-like JPEG of about 3.7 MB."""
    return media.encode(media.photo((4000, 3000)), "JPEG", quality=95)


def upload(account: TenantAccount, file_name: str, content_type: str, data: bytes) -> Any:
    body = account.upload_json(data, fileName=file_name, contentType=content_type)
    request = http_request(
        "POST", "/api/v1/media", body=json.dumps(body),
        headers={"Authorization": account.authorization},
    )  # fmt: skip
    response = upload_media.main(request, invocation_context())
    assert response.status_code == 201, response.get_body()
    return json.loads(response.get_body())


def get_item(account: TenantAccount, media_id: str, method: str = "GET") -> func.HttpResponse:
    request = http_request(
        method, f"/api/v1/media/{media_id}", route_params={"mediaId": media_id},
        headers={"Authorization": account.authorization},
    )  # fmt: skip
    return media_item.main(request, invocation_context())


def shown(account: TenantAccount, media_id: str) -> dict[str, Any]:
    response = get_item(account, media_id)
    assert response.status_code == 200
    body: dict[str, Any] = json.loads(response.get_body())
    return body


def blob_name(uploaded: dict[str, Any]) -> str:
    return f"{uploaded['mediaId']}/{uploaded['fileName']}"


def event(app: App, name: str) -> func.blob.InputStream:
    """The binding the runtime hands `main` for the blob as it is now."""
    container = app.settings.media_container
    client = app.storage.blobs.get_blob_client(container, name)
    downloader = client.download_blob()
    data = downloader.readall()
    props = downloader.properties
    return func.blob.InputStream(
        data=data,
        name=f"{container}/{name}",
        uri=client.url,
        length=len(data),
        blob_properties={"ETag": props.etag, "ContentType": props.content_settings.content_type},
        metadata=dict(props.metadata or {}),
    )


def stored(app: App, container: str, name: str) -> tuple[bytes, Any] | None:
    client = app.storage.blobs.get_blob_client(container, name)
    try:
        downloader = client.download_blob()
    except ResourceNotFoundError:
        return None
    return downloader.readall(), downloader.properties


def current_blob(app: App, name: str) -> tuple[bytes, Any]:
    found = stored(app, app.settings.media_container, name)
    assert found is not None
    return found


def original_of(app: App, name: str) -> bytes | None:
    found = stored(app, app.settings.originals_container, name)
    return found[0] if found else None


def test_oversized_photo_is_replaced_in_place_and_its_original_kept(
    own: App, account: TenantAccount, big_photo: bytes
) -> None:
    uploaded = upload(account, "holiday.jpg", "image/jpeg", big_photo)
    assert uploaded["optimization"] == {"state": "pending"}
    name = blob_name(uploaded)

    optimize_media.main(event(own, name), invocation_context())

    data, props = current_blob(own, name)
    assert len(data) <= MB and props.content_settings.content_type == "image/jpeg"
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and max(img.size) <= 1024
    assert props.metadata["optimized"] == "true"
    assert original_of(own, name) == big_photo
    # The URL issued at upload now serves the optimised bytes.
    assert requests.get(uploaded["uri"], timeout=10).content == data
    body = shown(account, uploaded["mediaId"])
    assert body["contentType"] == "image/jpeg" and body["fileName"] == "holiday.jpg"
    assert body["size"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest()
    outcome = body["optimization"]
    assert outcome["state"] == "optimized"
    assert outcome["originalContentType"] == "image/jpeg"
    assert outcome["originalSize"] == len(big_photo) and outcome["size"] == len(data)
    assert (outcome["width"], outcome["height"]) == (1024, 768)
    assert outcome["elapsedMs"] >= 0 and outcome["optimizedAt"]
    assert "reason" not in outcome


def test_own_write_and_duplicate_events_do_no_second_pass(own: App, account: TenantAccount) -> None:
    # Over the side limit, not the byte budget: pending, and quick to optimise.
    uploaded = upload(account, "wide.png", "image/png", samples.image("PNG", size=(1600, 400)))
    name = blob_name(uploaded)
    first = event(own, name)
    duplicate = event(own, name)
    optimize_media.main(first, invocation_context())
    _, written = current_blob(own, name)
    after_first = shown(account, uploaded["mediaId"])

    optimize_media.main(event(own, name), invocation_context())  # the event our own write raised
    optimize_media.main(duplicate, invocation_context())  # the upload's event, delivered twice

    _, now = current_blob(own, name)
    assert now.etag == written.etag
    assert shown(account, uploaded["mediaId"]) == after_first


def test_binding_without_properties_reads_etag_and_metadata_from_storage(
    own: App, account: TenantAccount
) -> None:
    uploaded = upload(account, "bare.png", "image/png", samples.image("PNG", size=(1600, 400)))
    name = blob_name(uploaded)
    full = event(own, name)
    bare = func.blob.InputStream(data=full.read(), name=full.name, length=full.length)

    optimize_media.main(bare, invocation_context())

    assert shown(account, uploaded["mediaId"])["optimization"]["state"] == "optimized"
    with Image.open(io.BytesIO(current_blob(own, name)[0])) as img:
        assert img.size == (1024, 256)


def test_small_upload_is_left_alone(own: App, account: TenantAccount) -> None:
    small = samples.image("JPEG")
    uploaded = upload(account, "small.jpg", "image/jpeg", small)
    assert uploaded["optimization"] == {"state": "not_needed"}
    name = blob_name(uploaded)
    _, before = current_blob(own, name)

    optimize_media.main(event(own, name), invocation_context())

    data, after = current_blob(own, name)
    assert data == small and after.etag == before.etag
    assert original_of(own, name) is None
    assert shown(account, uploaded["mediaId"])["optimization"] == {"state": "not_needed"}


def test_pending_media_the_optimiser_finds_small_is_recorded_not_needed(
    own: App, account: TenantAccount
) -> None:
    # Media recorded as pending by another path (e.g. inbound MMS) that turns out to fit.
    png = samples.image("PNG", size=(300, 200))
    record = own.media.put(
        tenant_id=account.tenant_id, phone_number=account.number, file_name="fits.png",
        original_file_name="fits.png", content_type="image/png", data=png,
        optimization_state="pending",
    )  # fmt: skip
    _, before = current_blob(own, record.blob_name)

    optimize_media.main(event(own, record.blob_name), invocation_context())

    data, after = current_blob(own, record.blob_name)
    assert data == png and after.etag == before.etag
    assert original_of(own, record.blob_name) is None
    outcome = shown(account, record.media_id)["optimization"]
    assert outcome["state"] == "not_needed"
    assert (outcome["width"], outcome["height"]) == (300, 200)
    assert outcome["originalSize"] == len(png) and "size" not in outcome


def test_decompression_bomb_is_recorded_failed_and_left_intact(
    own: App, account: TenantAccount
) -> None:
    bomb = media.png_bomb(8000, 8000)
    uploaded = upload(account, "bomb.png", "image/png", bomb)
    assert uploaded["optimization"] == {"state": "pending"}
    name = blob_name(uploaded)
    _, before = current_blob(own, name)

    optimize_media.main(event(own, name), invocation_context())

    data, after = current_blob(own, name)
    assert data == bomb and after.etag == before.etag
    assert original_of(own, name) is None
    body = shown(account, uploaded["mediaId"])
    assert body["size"] == len(bomb) and body["contentType"] == "image/png"
    assert body["optimization"]["state"] == "failed"
    assert body["optimization"]["reason"] == "decompression_bomb"


def test_media_deleted_before_processing_is_no_error_and_nothing_is_written(
    own: App, account: TenantAccount
) -> None:
    uploaded = upload(account, "gone.png", "image/png", samples.image("PNG", size=(1600, 400)))
    name = blob_name(uploaded)
    pending_event = event(own, name)
    assert get_item(account, uploaded["mediaId"], "DELETE").status_code == 204

    optimize_media.main(pending_event, invocation_context())

    assert stored(own, own.settings.media_container, name) is None
    assert original_of(own, name) is None
    assert get_item(account, uploaded["mediaId"]).status_code == 404


def test_media_deleted_while_optimising_leaves_nothing_behind(
    own: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploaded = upload(account, "racy.png", "image/png", samples.image("PNG", size=(1600, 400)))
    name = blob_name(uploaded)

    def delete_meanwhile(*args: Any, **kwargs: Any) -> Any:
        assert get_item(account, uploaded["mediaId"], "DELETE").status_code == 204
        return real_optimize(*args, **kwargs)

    monkeypatch.setattr(optimization, "optimize", delete_meanwhile)

    optimize_media.main(event(own, name), invocation_context())

    assert stored(own, own.settings.media_container, name) is None
    assert original_of(own, name) is None
    assert get_item(account, uploaded["mediaId"]).status_code == 404


def test_wav_over_budget_becomes_aac_under_the_same_name(
    own: App, account: TenantAccount, tmp_path: Path
) -> None:
    wav = media.tone(tmp_path / "voice.wav", seconds=7, codec=("-c:a", "pcm_s16le"), fmt="wav")
    assert len(wav) > MB
    uploaded = upload(account, "voice.wav", "audio/wav", wav)
    assert uploaded["optimization"] == {"state": "pending"}
    name = blob_name(uploaded)

    optimize_media.main(event(own, name), invocation_context())

    data, props = current_blob(own, name)
    assert props.content_settings.content_type == "audio/aac" and len(data) <= MB
    assert data[:2] == b"\xff\xf1"  # ADTS sync word
    assert original_of(own, name) == wav
    body = shown(account, uploaded["mediaId"])
    # The name (and so the URL) keeps its .wav extension: the URL must keep working.
    assert body["fileName"] == "voice.wav" and body["contentType"] == "audio/aac"
    assert body["optimization"]["originalContentType"] == "audio/wav"
    assert body["optimization"]["durationSeconds"] == pytest.approx(7, abs=0.2)


def crash_once(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """The host dies the first time `MediaStore.<method>` is reached; later calls go through."""
    real = getattr(MediaStore, method)
    calls = []

    def dying(self: MediaStore, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise ServiceRequestError("host killed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MediaStore, method, dying)


def test_run_killed_after_keeping_the_original_completes_when_retried(
    own: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = samples.image("PNG", size=(1600, 400))
    uploaded = upload(account, "retry.png", "image/png", png)
    name = blob_name(uploaded)
    crash_once(monkeypatch, "replace_in_place")

    with pytest.raises(ServiceRequestError):
        optimize_media.main(event(own, name), invocation_context())
    assert original_of(own, name) == png
    assert current_blob(own, name)[0] == png
    assert shown(account, uploaded["mediaId"])["optimization"] == {"state": "pending"}

    optimize_media.main(event(own, name), invocation_context())

    assert shown(account, uploaded["mediaId"])["optimization"]["state"] == "optimized"
    assert original_of(own, name) == png
    assert current_blob(own, name)[1].metadata["optimized"] == "true"


def test_run_killed_before_recording_is_finished_by_its_own_writes_event(
    own: App, account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploaded = upload(account, "late.png", "image/png", samples.image("PNG", size=(1600, 400)))
    name = blob_name(uploaded)
    crash_once(monkeypatch, "update")

    with pytest.raises(ServiceRequestError):
        optimize_media.main(event(own, name), invocation_context())
    data, written = current_blob(own, name)
    assert written.metadata["optimized"] == "true"
    assert shown(account, uploaded["mediaId"])["optimization"] == {"state": "pending"}

    optimize_media.main(event(own, name), invocation_context())

    body = shown(account, uploaded["mediaId"])
    assert body["optimization"]["state"] == "optimized"
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    assert current_blob(own, name)[1].etag == written.etag


@pytest.fixture
def poisoned(
    app: App, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    """optimize_media, under its own name in a synthetic root watching a fresh container, on an
    app whose record table is unreachable."""
    isolated = isolated_app(settings)
    container = isolated.settings.media_container
    (tmp_path / "host.json").write_text((ROOT / "host.json").read_text())
    folder = tmp_path / f"optimize_{container.replace('-', '_')}"
    folder.mkdir()
    binding = json.loads((ROOT / "optimize_media" / "function.json").read_text())
    binding["bindings"][0]["path"] = f"{container}/{{name}}"
    (folder / "function.json").write_text(json.dumps(binding))
    (folder / "__init__.py").write_text("from optimize_media import main as main\n")

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ServiceRequestError("table endpoint unreachable")

    monkeypatch.setattr(isolated.media, "get", unreachable)
    previous = current()
    install(isolated)
    runner = TriggerRunner(LocalHost(tmp_path), isolated.storage, poll_seconds=0.05)
    runner.start()
    yield isolated
    runner.stop()
    install(previous)


def test_blob_that_keeps_failing_is_reported_on_the_poison_queue(
    poisoned: App, account: TenantAccount
) -> None:
    png = samples.image("PNG", size=(1600, 400))
    record = poisoned.media.put(
        tenant_id=account.tenant_id, phone_number=account.number, file_name="stuck.png",
        original_file_name="stuck.png", content_type="image/png", data=png,
        optimization_state="pending",
    )  # fmt: skip
    poison = poisoned.storage.queue(BLOB_POISON_QUEUE)

    def reported() -> bool:
        entries = [json.loads(m.content) for m in poison.peek_messages(max_messages=32)]
        return any(
            e["ContainerName"] == poisoned.settings.media_container
            and e["BlobName"] == record.blob_name
            for e in entries
        )

    eventually(reported, timeout=15)
    assert current_blob(poisoned, record.blob_name)[0] == png
    assert original_of(poisoned, record.blob_name) is None
