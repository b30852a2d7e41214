"""The documented examples, sent through the local host over real HTTP, and real responses of
every documented kind checked against openapi.yaml: status, headers and body schema, success and
error alike. Examples are adapted only where they must be: this test's tenant, number and
uploaded media URLs instead of the guide's placeholders."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
import requests
from openapi_core.contrib.requests import RequestsOpenAPIResponse
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

from shared.app import App
from tests import samples
from tests.conftest import TenantAccount, eventually
from tests.contract.conftest import Contract, DocumentedRequest, example_jpeg, upload, upload_body
from tests.webhook_peers import Received, Receiver, media_server, post_inbound, receiving

pytestmark = pytest.mark.e2e


def send(base_url: str, account: TenantAccount, body: Any, **headers: str) -> requests.Response:
    return requests.post(
        f"{base_url}/api/v1/messages", json=body, auth=account.auth, headers=headers, timeout=30
    )


def get(base_url: str, account: TenantAccount | None, path: str) -> requests.Response:
    return requests.get(f"{base_url}{path}", auth=account.auth if account else None, timeout=10)


def test_health_conforms(base_url: str, contract: Contract) -> None:
    contract.response(get(base_url, None, "/api/health"), 200)


@pytest.mark.parametrize("example", ["base64", "byteArray"])
def test_upload_examples_then_read_and_delete_conform(
    base_url: str, account: TenantAccount, contract: Contract, example: str
) -> None:
    body = contract.example("/v1/media", "post", example)
    body.update(phoneNumber=account.number, tenantId=account.tenant_id)
    created = contract.exchange(upload(base_url, account, body), 201).json()
    assert created["fileName"] == "product-image.jpg"
    location = f"/api/v1/media/{created['mediaId']}"
    record = contract.response(get(base_url, account, location), 200).json()
    assert record["uri"] == created["uri"]
    deleted = requests.delete(f"{base_url}{location}", auth=account.auth, timeout=10)
    contract.response(deleted, 204)
    contract.response(get(base_url, account, location), 404)


@pytest.mark.parametrize("example", ["singleImage", "threeAttachments"])
def test_send_examples_and_their_messages_conform(
    base_url: str, account: TenantAccount, contract: Contract, example: str
) -> None:
    body = contract.example("/v1/messages", "post", example)
    uploads = [
        contract.response(upload(base_url, account, upload_body(contract, account,
                                                                fileName=f"image{i + 1}.jpg")), 201)
        for i in range(len(body["mediaUrls"]))
    ]  # fmt: skip
    body.update(**{"from": account.number}, mediaUrls=[u.json()["uri"] for u in uploads])
    accepted = contract.exchange(send(base_url, account, body), 202).json()
    [queued] = accepted["messages"]
    assert accepted["type"] == "mms" and accepted["mms"]["mediaCount"] == len(body["mediaUrls"])
    path = queued["location"]
    eventually(lambda: get(base_url, account, path).json()["status"] == "delivered")
    shown = contract.response(get(base_url, account, path), 200).json()
    assert shown["direction"] == "outbound" and shown["mediaUrls"] == body["mediaUrls"]


def test_sms_to_several_recipients_conforms(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    body = {"from": account.number, "to": ["+15559876543", "+15559876544"], "body": "Hi"}
    accepted = contract.exchange(send(base_url, account, body), 202).json()
    assert accepted["type"] == "sms" and len(accepted["messages"]) == 2


def test_inbound_example_its_webhook_and_message_conform(
    carrier_app: App, base_url: str, account: TenantAccount, contract: Contract
) -> None:
    event = contract.example("/v1/webhooks/inbound", "post", "mms")
    jpeg = example_jpeg(contract)
    vcard = b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada Lovelace\r\nEND:VCARD\r\n"
    files = {"/0/photo.jpg": (jpeg, "image/jpeg"), "/1/contact.vcf": (vcard, "text/vcard")}
    with media_server(files) as media, receiving(Receiver(secret="")) as receiver:
        tenant = carrier_app.directory.set_webhook(account.tenant_id, receiver.url)
        receiver.secret = tenant.webhook_secrets[0]
        event.update(messageId=f"SM{uuid.uuid4().hex}", to=account.number)
        for attachment, (path, (data, _)) in zip(event["attachments"], files.items(), strict=True):
            attachment.update(url=f"{media}{path}", size=len(data))
        accepted = contract.exchange(post_inbound(base_url, event), 200).json()
        eventually(lambda: receiver.verified)
    [delivery] = receiver.verified
    contract.openapi.validate_request(WebhookRequest("messageReceived", delivery))
    assert [a["name"] for a in delivery.payload["attachments"]] == ["photo.jpg", "contact.vcf"]
    path = f"/api/v1/messages/{accepted['messageId']}"
    eventually(lambda: get(base_url, account, path).json()["webhook"]["state"] == "delivered")
    shown = contract.response(get(base_url, account, path), 200).json()
    assert shown["direction"] == "inbound" and shown["status"] == "processed"


class WebhookRequest:
    """A webhook as the customer's endpoint received it, for openapi-core's webhook validator."""

    def __init__(self, name: str, delivery: Received) -> None:
        self.name = name
        self.method = "post"
        self.body = delivery.body
        self.content_type = delivery.headers.get("Content-Type", "application/json").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(), header=Headers(delivery.headers),
            cookie=ImmutableMultiDict(),
        )  # fmt: skip


# -- errors: every documented status, with the problem body and headers the document promises


def test_400_upload_validation_names_each_field(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    body = upload_body(contract, account, phoneNumber="555-1234", data=[255, 216, 256])
    problem = contract.response(upload(base_url, account, body), 400).json()
    assert problem["code"] == "validation_failed" and problem["errors"][0]["field"] == "phoneNumber"


def test_400_send_malformed_json(base_url: str, account: TenantAccount, contract: Contract) -> None:
    response = requests.post(
        f"{base_url}/api/v1/messages", data=b"{", auth=account.auth, timeout=10,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert contract.response(response, 400).json()["code"] == "malformed_json"


def test_400_send_too_many_recipients(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    to = [f"+1555{7000000 + i}" for i in range(101)]
    response = send(base_url, account, {"from": account.number, "to": to, "body": "x"})
    assert contract.response(response, 400).json()["errors"][0]["field"] == "to"


def test_401_without_credentials_has_a_challenge(base_url: str, contract: Contract) -> None:
    response = requests.post(f"{base_url}/api/v1/media", json={}, timeout=10)
    assert contract.response(response, 401).headers["WWW-Authenticate"].startswith("Basic")
    contract.response(requests.get(f"{base_url}/api/v1/messages/x", timeout=10), 401)


def test_401_inbound_bad_signature(
    carrier_app: App, base_url: str, account: TenantAccount, contract: Contract
) -> None:
    event = contract.example("/v1/webhooks/inbound", "post", "mms") | {"to": account.number}
    response = post_inbound(base_url, event, secret="guessed")
    assert contract.response(response, 401).json()["code"] == "signature_invalid"


def test_403_other_tenant_and_number(
    base_url: str, account: TenantAccount, other_account: TenantAccount, contract: Contract
) -> None:
    body = upload_body(contract, account, tenantId=other_account.tenant_id)
    contract.response(upload(base_url, account, body), 403)
    message = {"from": other_account.number, "to": ["+15559876543"], "body": "hi"}
    assert contract.response(send(base_url, account, message), 403).json()["code"] == (
        "number_not_provisioned"
    )


def test_404_unknown_media_message_and_number(
    carrier_app: App, base_url: str, account: TenantAccount, contract: Contract
) -> None:
    contract.response(get(base_url, account, f"/api/v1/media/{uuid.uuid4().hex}"), 404)
    contract.response(get(base_url, account, f"/api/v1/messages/{uuid.uuid4()}"), 404)
    event = contract.example("/v1/webhooks/inbound", "post", "mms") | {"to": "+15550000002"}
    assert contract.response(post_inbound(base_url, event), 404).json()["code"] == (
        "number_not_provisioned"
    )


def test_413_upload_one_byte_over_5_mb(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    data = base64.b64encode(bytes(5 * 1024 * 1024 + 1)).decode()
    response = upload(base_url, account, upload_body(contract, account, data=data))
    assert contract.response(response, 413).json()["detail"] == (
        "Media file exceeds maximum size of 5MB"
    )


def test_413_inbound_event_over_64_kib(
    carrier_app: App, base_url: str, account: TenantAccount, contract: Contract
) -> None:
    event = contract.example("/v1/webhooks/inbound", "post", "mms")
    event.update(to=account.number, padding="x" * 70_000)
    assert contract.response(post_inbound(base_url, event), 413).json()["code"] == "event_too_large"


def test_415_unsupported_and_mismatched_types(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    bmp = upload_body(contract, account, fileName="pic.bmp", contentType="image/bmp")
    problem = contract.response(upload(base_url, account, bmp), 415).json()
    assert problem["detail"] == "Unsupported media type: image/bmp"
    png = upload_body(contract, account, fileName="pic.png", contentType="image/png")
    problem = contract.response(upload(base_url, account, png), 415).json()
    assert problem["code"] == "content_type_mismatch"
    assert (problem["declaredType"], problem["detectedType"]) == ("image/png", "image/jpeg")


def test_422_media_url_rejected_names_the_url(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    with media_server({"/pic.bmp": (b"BM" + bytes(64), "image/bmp")}) as media:
        body = {"from": account.number, "to": ["+15559876543"], "mediaUrls": [f"{media}/pic.bmp"]}
        problem = contract.response(send(base_url, account, body), 422).json()
    assert problem["code"] == "media_url_rejected"
    assert problem["errors"][0]["url"] == f"{media}/pic.bmp"


def test_422_idempotency_key_reused_with_another_body_and_replay_conforms(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    key = uuid.uuid4().hex
    body = {"from": account.number, "to": ["+15559876543"], "body": "once"}
    first = contract.response(send(base_url, account, body, **{"Idempotency-Key": key}), 202)
    again = contract.response(send(base_url, account, body, **{"Idempotency-Key": key}), 202)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = send(base_url, account, body | {"body": "twice"}, **{"Idempotency-Key": key})
    assert contract.response(other, 422).json()["code"] == "idempotency_key_reused"


def test_an_undocumented_status_would_fail_the_check(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    """The checker itself: a real 201 presented as if it were a 418 is refused."""
    response = upload(base_url, account, upload_body(contract, account))
    response.status_code = 418
    with pytest.raises(ResponseNotFound, match="418"):
        contract.openapi.validate_response(
            DocumentedRequest(response.request), RequestsOpenAPIResponse(response)
        )


# -- the multipart alternative of the upload


def upload_form(
    base_url: str, account: TenantAccount, data: bytes, **fields: str
) -> requests.Response:
    form = {"phoneNumber": account.number, "tenantId": account.tenant_id, **fields}
    return requests.post(
        f"{base_url}/api/v1/media", data=form, files={"file": ("photo.jpg", data, "image/jpeg")},
        auth=account.auth, timeout=30,
    )  # fmt: skip


def test_multipart_upload_conforms_and_answers_as_the_json_upload(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    jpeg = example_jpeg(contract)
    created = contract.exchange(upload_form(base_url, account, jpeg), 201).json()
    as_json = contract.response(upload(base_url, account, upload_body(contract, account)), 201)
    assert set(created) == set(as_json.json())
    assert created["sha256"] == as_json.json()["sha256"] and created["fileName"] == "photo.jpg"
    record = contract.response(get(base_url, account, f"/api/v1/media/{created['mediaId']}"), 200)
    assert record.json()["uri"] == created["uri"]


def test_multipart_upload_errors_conform(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    jpeg = example_jpeg(contract)
    over = jpeg + b"\0" * (5 * 1024 * 1024 + 1 - len(jpeg))
    too_large = contract.response(upload_form(base_url, account, over), 413).json()
    assert too_large["detail"] == "Media file exceeds maximum size of 5MB"
    lying = contract.response(upload_form(base_url, account, samples.image("PNG")), 415)
    assert lying.json()["code"] == "content_type_mismatch"
    bad = contract.response(upload_form(base_url, account, jpeg, phoneNumber="555"), 400).json()
    assert bad["errors"][0]["field"] == "phoneNumber"


# -- upload sessions: the file PUT straight to storage


def open_session(base_url: str, account: TenantAccount, **changes: str) -> requests.Response:
    body = {"phoneNumber": account.number, "tenantId": account.tenant_id,
            "fileName": "photo.jpg", "contentType": "image/jpeg", **changes}  # fmt: skip
    return requests.post(
        f"{base_url}/api/v1/media/uploads", json=body, auth=account.auth, timeout=10
    )


def complete(base_url: str, account: TenantAccount, media_id: str) -> requests.Response:
    return requests.post(
        f"{base_url}/api/v1/media/uploads/{media_id}/complete", auth=account.auth, timeout=60
    )


def test_upload_session_states_and_completion_conform(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    created = contract.exchange(open_session(base_url, account), 201).json()
    media_id = created["mediaId"]
    waiting = contract.response(get(base_url, account, f"/api/v1/media/{media_id}"), 200)
    assert waiting.json()["state"] == "uploading"
    put = requests.put(
        created["uploadUrl"], data=example_jpeg(contract), headers=created["requiredHeaders"],
        timeout=30,
    )  # fmt: skip
    assert put.status_code == 201
    done = contract.response(complete(base_url, account, media_id), 201).json()
    assert done["mediaId"] == media_id
    ready = contract.response(get(base_url, account, f"/api/v1/media/{media_id}"), 200)
    assert ready.json()["state"] == "ready"


def test_upload_session_refusals_conform(
    base_url: str, account: TenantAccount, contract: Contract
) -> None:
    unsupported = open_session(base_url, account, fileName="a.bmp", contentType="image/bmp")
    contract.response(unsupported, 415)
    created = contract.response(open_session(base_url, account), 201).json()
    media_id = created["mediaId"]
    requests.put(
        created["uploadUrl"], data=samples.image("PNG"), headers=created["requiredHeaders"],
        timeout=30,
    )  # fmt: skip
    refused = contract.response(complete(base_url, account, media_id), 415).json()
    assert refused["code"] == "content_type_mismatch"
    rejected = contract.response(get(base_url, account, f"/api/v1/media/{media_id}"), 200).json()
    assert rejected["state"] == "rejected" and rejected["problem"] == refused
    contract.response(complete(base_url, account, "0" * 32), 404)
