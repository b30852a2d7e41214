"""Standard Webhooks signing (checked with the reference library), the retry schedule, the
customer payload and the carrier event's validation."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.errors import BadRequest, ValidationFailed
from shared.inbound.event import parse_event
from shared.inbound.records import InboundRecord
from shared.media.ingest import file_name_for
from shared.settings import Settings
from shared.tenancy import new_webhook_secret
from shared.webhooks.schedule import max_attempts, retry_delay
from shared.webhooks.signing import sign_headers

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "tests" / "events" / "inbound_mms.json").read_bytes()


def test_signed_headers_verify_with_the_reference_library() -> None:
    secret = new_webhook_secret()
    body = json.dumps({"messageId": "m", "message": "héllo"}, ensure_ascii=False)
    headers = sign_headers("msg_1", datetime.now(UTC), body, [secret])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(secret).verify(body.encode(), headers) == json.loads(body)


def test_during_a_rotation_either_secret_verifies_and_a_third_does_not() -> None:
    new, old = new_webhook_secret(), new_webhook_secret()
    headers = sign_headers("msg_2", datetime.now(UTC), "{}", [new, old])
    assert headers["webhook-signature"].count("v1,") == 2
    Webhook(new).verify("{}", headers)
    Webhook(old).verify("{}", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify("{}", headers)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign_headers("msg_3", datetime.now(UTC), "{}", [])


def test_default_schedule_is_hours_long_with_eight_tries() -> None:
    schedule = Settings(media_storage_account_name="x").webhook_retry_schedule_seconds
    assert max_attempts(schedule) == 8
    assert sum(schedule) / 3600 > 27
    assert [retry_delay(schedule, n, 0) for n in (1, 2, 7, 8)] == [5, 300, 36000, None]


def test_jitter_stays_within_its_spread() -> None:
    delays = {retry_delay((1000,), 1, 0.2) for _ in range(200)}
    assert all(800 <= d <= 1200 for d in delays if d is not None) and len(delays) > 10


def test_queue_names_match_the_function_bindings() -> None:
    settings = Settings(media_storage_account_name="x")
    for folder, name in (
        ("process_inbound", settings.inbound_queue),
        ("deliver_webhook", settings.webhook_queue),
    ):
        binding = json.loads((ROOT / folder / "function.json").read_text())["bindings"][0]
        assert binding["queueName"] == name


def test_the_sample_event_parses() -> None:
    event = parse_event(SAMPLE)
    assert event.to == "+15551234567" and len(event.attachments) == 2
    assert event.attachments[0].content_type == "image/jpeg"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": "555"}, "to"),
        ({"messageId": "../x"}, "messageId"),
        ({"attachments": [{"name": "a"}]}, "attachments[0].url"),
        ({"attachments": [{"url": "https://x.test/a"}] * 11}, "attachments"),
        ({"from": 5}, "from"),
    ],
)
def test_invalid_events_name_the_field(change: dict[str, object], field: str) -> None:
    event = {**json.loads(SAMPLE), **change}
    with pytest.raises(ValidationFailed) as caught:
        parse_event(json.dumps(event).encode())
    assert caught.value.extra["errors"][0]["field"] == field


def test_non_json_is_400() -> None:
    with pytest.raises(BadRequest):
        parse_event(b"{not json")


def test_payload_has_the_guides_fields_and_lists_failures_apart() -> None:
    record = InboundRecord(
        partition_key="t",
        row_key="3fa85f64-5717-4562-b3fc-2c963f66afa6",
        event=parse_event(SAMPLE),
        state="processed",
        received_at="2025-01-11T10:15:31.000+00:00",
        attachments=[{"name": "photo.jpg", "url": "https://s/a/photo.jpg?sig=x",
                      "contentType": "image/jpeg", "size": 512000, "mediaId": "m1"}],
        failed_attachments=[{"index": 1, "name": "contact.vcf", "contentType": "text/vcard",
                             "size": 96, "error": {"code": "timeout", "message": "slow"}}],
    )  # fmt: skip
    payload = record.payload()
    assert list(payload)[:4] == ["messageId", "from", "message", "attachments"]
    assert payload["attachments"] == [
        {"name": "photo.jpg", "url": "https://s/a/photo.jpg?sig=x", "contentType": "image/jpeg",
         "size": 512000}
    ]  # fmt: skip
    assert payload["to"] == "+15551234567" and payload["receivedAt"].startswith("2025-01-11")
    assert payload["failedAttachments"][0]["error"]["code"] == "timeout"


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("photo.jpg", "image/jpeg", "photo.jpg"),
        ("IMG_0001", "image/jpeg", "IMG_0001.jpg"),
        ("IMG_0001.HEIC", "image/jpeg", "IMG_0001.jpg"),
        ("", "text/vcard", "attachment-3.vcf"),
        ("../../etc/passwd", "text/plain", "etc_passwd.txt"),
    ],
)
def test_stored_names_are_safe_and_match_the_type(
    name: str, content_type: str, expected: str
) -> None:
    assert file_name_for(name, content_type, 2) == expected
