"""The local host learns routes only from function.json files."""

import json
from pathlib import Path

import azure.functions as func
import pytest

from tools.localhost import LocalHost

HANDLER = """
import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        f"{req.method} {dict(req.route_params)} {dict(req.params)} {req.get_body().decode()}"
    )
"""


def make_function(root: Path, name: str, route: str, methods: list[str] | None) -> None:
    folder = root / name
    folder.mkdir()
    binding: dict[str, object] = {
        "type": "httpTrigger",
        "direction": "in",
        "name": "req",
        "route": route,
    }
    if methods is not None:
        binding["methods"] = methods
    out = {"type": "http", "direction": "out", "name": "$return"}
    (folder / "function.json").write_text(json.dumps({"bindings": [binding, out]}))
    (folder / "__init__.py").write_text(HANDLER)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "host.json").write_text(
        '{"version": "2.0", "extensions": {"http": {"routePrefix": "x"}}}'
    )
    make_function(tmp_path, "lh_items", "items/{id:int}", ["get"])
    make_function(tmp_path, "lh_items_new", "items/new", ["get", "post"])
    make_function(tmp_path, "lh_any", "files/{*rest}", None)
    return tmp_path


def call(host: LocalHost, method: str, path: str, body: bytes = b"") -> func.HttpResponse:
    return host.handle_http(method, f"http://h{path}", {}, body)


def test_a_route_added_in_function_json_is_served(root: Path) -> None:
    response = call(LocalHost(root), "GET", "/x/items/42?q=1")
    assert response.get_body() == b"GET {'id': '42'} {'q': '1'} "


def test_literal_segment_wins_over_a_parameter_and_methods_are_honoured(root: Path) -> None:
    host = LocalHost(root)
    assert call(host, "POST", "/x/items/new", b"hi").get_body() == b"POST {} {} hi"
    assert call(host, "POST", "/x/items/42").status_code == 404  # GET only
    assert call(host, "GET", "/x/items/abc").status_code == 404  # int constraint


def test_catch_all_and_any_method(root: Path) -> None:
    response = call(LocalHost(root), "DELETE", "/x/files/a/b/c.txt")
    assert response.get_body() == b"DELETE {'rest': 'a/b/c.txt'} {} "


def test_route_prefix_comes_from_host_json(root: Path) -> None:
    assert call(LocalHost(root), "GET", "/api/items/42").status_code == 404


def test_project_functions_are_all_routed() -> None:
    host = LocalHost()
    names = {r.function.name for r in host.routes}
    assert {"health", "upload_media", "send_message", "inbound_webhook"} <= names
