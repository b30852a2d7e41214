"""Fixtures for the contract tests: the OpenAPI document (parsed and as an openapi-core spec),
requests validated against it as if sent to the documented local server, and the app the local
host serves with the carrier webhook switched on."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from shared.app import App
from tests.conftest import TenantAccount, app_with
from tests.webhook_peers import CARRIER_SECRET

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi.yaml"
# The documented local server: requests to the test's random port are checked as if sent there.
DOCUMENTED_HOST = "http://localhost:7071"


@pytest.fixture(scope="session")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return loaded


@pytest.fixture(scope="session")
def openapi() -> OpenAPI:
    # openapi-core reads only application/json bodies by itself.
    config = Config(
        extra_media_type_deserializers={
            "application/problem+json": _ignoring_parameters(json.loads),
            "application/yaml": _ignoring_parameters(yaml.safe_load),
        }
    )
    return OpenAPI.from_file_path(str(DOCUMENT), config=config)


def _ignoring_parameters(parse: Callable[[bytes], Any]) -> Callable[..., Any]:
    """openapi-core passes media type parameters (`charset`) as keywords."""

    def deserialize(value: bytes, **_parameters: str) -> Any:
        return parse(value)

    return deserialize


class DocumentedRequest(RequestsOpenAPIRequest):
    @property
    def host_url(self) -> str:
        return DOCUMENTED_HOST


class Contract:
    """Checks real exchanges against the document; each check names the operation and status."""

    def __init__(self, openapi: OpenAPI, document: dict[str, Any]) -> None:
        self.openapi = openapi
        self.document = document

    def response(self, response: requests.Response, status: int) -> requests.Response:
        assert response.status_code == status, response.text
        self.openapi.validate_response(
            DocumentedRequest(response.request), RequestsOpenAPIResponse(response)
        )
        return response

    def exchange(self, response: requests.Response, status: int) -> requests.Response:
        """The request as sent (a documented example) and the response both conform."""
        self.openapi.validate_request(DocumentedRequest(response.request))
        return self.response(response, status)

    def example(self, path: str, method: str, name: str) -> dict[str, Any]:
        content = self.document["paths"][path][method]["requestBody"]["content"]
        value: dict[str, Any] = copy.deepcopy(
            content["application/json"]["examples"][name]["value"]
        )
        return value


@pytest.fixture(scope="session")
def contract(openapi: OpenAPI, document: dict[str, Any]) -> Contract:
    return Contract(openapi, document)


@pytest.fixture
def carrier_app(app: App, base_url: str) -> Iterator[App]:
    """The app the local host serves, with the carrier webhook configured and quick retries."""
    with app_with(
        app,
        carrier_webhook_secret=CARRIER_SECRET,
        webhook_retry_schedule_seconds=(1, 1),
        webhook_retry_jitter=0.0,
    ) as changed:
        yield changed


def upload(
    base_url: str, account: TenantAccount, body: dict[str, Any], **headers: str
) -> requests.Response:
    return requests.post(
        f"{base_url}/api/v1/media", json=body, auth=account.auth, headers=headers, timeout=30
    )


def upload_body(contract: Contract, account: TenantAccount, **changes: Any) -> dict[str, Any]:
    """The document's base64 upload example, for this account's tenant and number."""
    body = contract.example("/v1/media", "post", "base64")
    body.update(phoneNumber=account.number, tenantId=account.tenant_id)
    body.update(changes)
    return body


def example_jpeg(contract: Contract) -> bytes:
    return base64.b64decode(contract.example("/v1/media", "post", "base64")["data"])
