"""The OpenAPI document itself: valid OpenAPI 3.1, its examples valid against their schemas,
served byte for byte as deployed, and describing exactly the routes the function folders bind."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.contract.conftest import DOCUMENT, ROOT

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_CONSTRAINT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?\??\}")
DOCUMENT_ID = "urn:media-api:openapi"
# Function folders that serve people, not API clients: the reference page (`GET /api/docs`) is
# HTML and static files behind a catch-all route, which no client codes against and which an
# OpenAPI path (whose parameters cannot span segments) cannot even describe. `openapi.yaml`
# itself stays documented: clients and generators fetch it.
NOT_API = {"api_docs"}


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert str(document["openapi"]).startswith("3.1.")
    validate(document, cls=OpenAPIV31SpecValidator)


def test_document_is_not_excluded_from_deployment() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not ignored & {"openapi.yaml", "*.yaml", "openapi_document", "shared"}


def function_routes() -> set[tuple[str, str]]:
    """(method, path) of every HTTP function, with the host's route prefix and the route
    constraints (`{id:guid}`) dropped, as clients see them."""
    prefix = json.loads((ROOT / "host.json").read_text())["extensions"]["http"]["routePrefix"]
    routes = set()
    for spec in sorted(ROOT.glob("*/function.json")):
        if spec.parent.name in NOT_API:
            continue
        bindings = json.loads(spec.read_text())["bindings"]
        for binding in bindings:
            if binding["type"] != "httpTrigger":
                continue
            assert binding.get("methods"), f"{spec.parent.name}: list the methods explicitly"
            route = _CONSTRAINT.sub(r"{\1}", binding.get("route") or spec.parent.name)
            path = f"/{prefix}/{route.strip('/')}" if prefix else f"/{route.strip('/')}"
            routes |= {(method.lower(), path) for method in binding["methods"]}
    return routes


def test_the_routes_left_out_of_the_document_exist() -> None:
    assert all((ROOT / name / "function.json").is_file() for name in NOT_API)


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    bases = {re.sub(r"^[a-z]+://[^/]+", "", server["url"]) for server in document["servers"]}
    assert len(bases) == 1, f"every server must have the same base path, got {bases}"
    [base] = bases
    return {
        (method, base + path)
        for path, item in document["paths"].items()
        for method in HTTP_METHODS
        if method in item
    }


def test_every_function_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    functions, documented = function_routes(), documented_routes(document)
    assert functions - documented == set(), "routes missing from openapi.yaml"
    assert documented - functions == set(), "openapi.yaml documents routes no function serves"


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The API's own operations (not the customer webhooks, which the customer answers)."""
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def examples(document: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, schema $ref pointer, example) for every example of a JSON body in the document."""

    def media(where: str, content: dict[str, Any], pointer: str) -> Iterator[tuple[str, str, Any]]:
        for media_type, body in content.items():
            if "json" not in media_type or "schema" not in body:
                continue
            schema_pointer = f"{pointer}/content/{_escape(media_type)}/schema"
            if "example" in body:
                yield where, schema_pointer, body["example"]
            for name, example in body.get("examples", {}).items():
                yield f"{where} ({name})", schema_pointer, example["value"]

    for section in ("paths", "webhooks"):
        for path, item in document.get(section, {}).items():
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                pointer = f"#/{section}/{_escape(path)}/{method}"
                operation = item[method]
                if "requestBody" in operation:
                    yield from media(
                        f"{method.upper()} {path} request",
                        operation["requestBody"]["content"],
                        f"{pointer}/requestBody",
                    )
                for status, response in operation["responses"].items():
                    if "$ref" in response:
                        continue  # shared responses are checked once, below
                    yield from media(
                        f"{method.upper()} {path} {status}",
                        response.get("content", {}),
                        f"{pointer}/responses/{status}",
                    )
    for name, response in document["components"]["responses"].items():
        yield from media(
            f"response {name}", response.get("content", {}), f"#/components/responses/{name}"
        )


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    registry = Registry().with_resource(
        DOCUMENT_ID, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    checked = 0
    for where, pointer, example in examples(document):
        validator = Draft202012Validator({"$ref": DOCUMENT_ID + pointer}, registry=registry)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in
                  validator.iter_errors(example)]  # fmt: skip
        assert not errors, f"{where}: {errors}"
        checked += 1
    assert checked >= 10


def test_every_operation_documents_its_errors_as_problems(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            resolved = (
                responses[response["$ref"].rsplit("/", 1)[1]] if "$ref" in response else response
            )
            if int(status) >= 400 and name != "GET /health":
                assert list(resolved["content"]) == ["application/problem+json"], (name, status)
            assert "X-Correlation-Id" in resolved.get("headers", {}), (name, status)


@pytest.mark.e2e
def test_the_served_document_is_the_file(base_url: str) -> None:
    response = requests.get(f"{base_url}/api/openapi.yaml", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/yaml")
    assert response.content == Path(DOCUMENT).read_bytes()
    assert response.headers["X-Correlation-Id"]
