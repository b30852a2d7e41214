"""The provider adapters alone: each status maps onto ours, malformed provider bodies become
400s (never 500s), and an event without the provider's message id is refused."""

from __future__ import annotations

import pytest

from shared.carriers import bandwidth, telnyx, twilio
from shared.errors import ValidationFailed

NUMBER, HANDSET = "+15551230000", "+15557770000"


@pytest.mark.parametrize(("raw", "ours"), [
    ("queued", "sent"), ("sent", "sent"), ("delivered", "delivered"), ("read", "delivered"),
    ("undelivered", "undelivered"), ("failed", "failed"), ("receiving", None),
])  # fmt: skip
def test_twilio_statuses_map_onto_ours(raw: str, ours: str | None) -> None:
    report = twilio.status_report({"MessageSid": "SM1", "MessageStatus": raw, "ErrorCode": "30003"},
                                  {"ref": "t/m"})  # fmt: skip
    assert report.status == ours and report.reference == ("t", "m")
    assert (report.reason is not None) == (ours in ("failed", "undelivered"))


@pytest.mark.parametrize(("raw", "ours"), [
    ("sent", "sent"), ("delivered", "delivered"), ("sending_failed", "failed"),
    ("delivery_failed", "undelivered"), ("delivery_unconfirmed", None),
])  # fmt: skip
def test_telnyx_statuses_map_onto_ours(raw: str, ours: str | None) -> None:
    event = {"data": {"event_type": "message.finalized",
                      "payload": {"id": "x", "to": [{"status": raw}]}}}  # fmt: skip
    assert telnyx.status_report(event).status == ours


@pytest.mark.parametrize(("kind", "ours"), [
    ("message-sending", "sent"), ("message-delivered", "delivered"), ("message-failed", "failed"),
    ("message-read", None),
])  # fmt: skip
def test_bandwidth_statuses_map_onto_ours(kind: str, ours: str | None) -> None:
    report = bandwidth.status_report({"type": kind, "message": {"id": "b1", "tag": "m"}}, "t")
    assert report.status == ours and report.reference == ("t", "m")


def test_inbound_without_the_providers_message_id_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        twilio.inbound_event({"From": HANDSET, "To": NUMBER, "Body": "hi"})
    with pytest.raises(ValidationFailed):
        bandwidth.inbound_event({"type": "message-received", "to": NUMBER, "message": "junk"})


def test_twilio_inbound_becomes_the_generic_event() -> None:
    event = twilio.inbound_event({"MessageSid": "MM1", "From": HANDSET, "To": NUMBER,
                                  "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/m",
                                  "MediaContentType0": "image/jpeg"})  # fmt: skip
    assert event.message_id == "twilio:MM1" and event.carrier == "twilio"
    assert [a.url for a in event.attachments] == ["https://api.twilio.com/m"]


def test_bandwidth_packaging_parts_are_not_attachments() -> None:
    event = bandwidth.inbound_event({"type": "message-received", "to": NUMBER, "message": {
        "id": "b1", "from": HANDSET, "media": ["https://m.example/0.smil", "https://m.example/a.jpg"],
    }})  # fmt: skip
    assert [a.name for a in event.attachments] == ["a.jpg"]


def test_bandwidth_callbacks_must_be_an_array_of_objects() -> None:
    with pytest.raises(TypeError):
        bandwidth.callbacks({"type": "message-received"})
    with pytest.raises(TypeError):
        bandwidth.callbacks(["x"])
