"""The API reference page (`GET /api/docs`) called directly with real binding objects: the page,
the Swagger UI files it loads (from the package, not a CDN), their caching, and nothing else."""

from __future__ import annotations

import gzip
import re

import azure.functions as func
import pytest

import api_docs
from shared.api_docs import swagger_ui
from shared.app import App
from tests.conftest import http_request
from tests.context import invocation_context


def get(path: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    asset = path.removeprefix("/api/docs").removeprefix("/")
    request = http_request("GET", path, headers=headers, route_params={"asset": asset})
    return api_docs.main(request, invocation_context())


def referenced(page: func.HttpResponse) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]+)"', page.get_body().decode())


def test_the_page_names_its_folder_when_asked_for_without_a_trailing_slash(app: App) -> None:
    assert '<base href="docs/">' in get("/api/docs").get_body().decode()
    assert '<base href="./">' in get("/api/docs/").get_body().decode()
    assert '<base href="./">' in get("/api/docs/index.html").get_body().decode()


def test_the_page_is_html_revalidated_on_every_load_and_loads_only_its_own_scripts(
    app: App,
) -> None:
    page = get("/api/docs/")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src" not in policy  # scripts fall back to 'self': no inline or remote code
    assert "frame-ancestors 'none'" in policy
    assert page.headers["X-Correlation-Id"]


def test_every_file_the_page_loads_is_served_from_the_package_with_its_type(app: App) -> None:
    types = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
    files = [ref for ref in referenced(get("/api/docs/")) if ref != "./"]
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in files)
    for ref in files:
        assert not ref.startswith(("http:", "https:", "//")), f"{ref} is not served by the app"
        response = get(f"/api/docs/{ref}")
        assert response.status_code == 200, ref
        suffix = ref[ref.rindex(".") :]
        assert response.headers["Content-Type"].startswith(types[suffix]), ref
        if ref.startswith(swagger_ui().name + "/"):
            name = ref.split("/", 1)[1]
            assert response.get_body() == (swagger_ui() / name).read_bytes(), ref


def test_swagger_ui_files_are_cached_for_a_year_under_a_versioned_folder(app: App) -> None:
    response = get(f"/api/docs/{swagger_ui().name}/swagger-ui-bundle.js")
    assert re.fullmatch(r"swagger-ui-\d+\.\d+\.\d+", swagger_ui().name)
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    initializer = get("/api/docs/swagger-initializer.js")
    assert initializer.headers["Cache-Control"] == "no-cache"
    assert b"../openapi.yaml" in initializer.get_body()


def test_text_files_are_gzipped_only_for_clients_that_accept_it(app: App) -> None:
    path = f"/api/docs/{swagger_ui().name}/swagger-ui.css"
    plain = get(path)
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    zipped = get(path, {"Accept-Encoding": "br, gzip;q=0.8"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.get_body()) == plain.get_body()
    assert len(zipped.get_body()) < len(plain.get_body()) / 3
    refused = get(path, {"Accept-Encoding": "gzip;q=0, *"})
    assert "Content-Encoding" not in refused.headers
    png = get(f"/api/docs/{swagger_ui().name}/favicon-16x16.png", {"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in png.headers


@pytest.mark.parametrize(
    "asset",
    [
        "../openapi.yaml",
        "../../host.json",
        "..%2F..%2Fhost.json",
        "/etc/passwd",
        "{version}/../../../local.settings.json.example",
        "{version}/../../__init__.py",
        "{version}//etc/passwd",
        "{version}/../{version}/swagger-ui.css",
        "{version}/index.j2",
        "{version}/swagger-initializer.js",  # the package's own, which loads a remote petstore
        "swagger-ui.css",
        "__init__.py",
        "index.html/",
        "swagger-ui-0.0.1/swagger-ui.css",
    ],
)
def test_anything_but_the_reference_files_is_404(app: App, asset: str) -> None:
    response = get("/api/docs/" + asset.format(version=swagger_ui().name))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert b"passwd" not in response.get_body()
