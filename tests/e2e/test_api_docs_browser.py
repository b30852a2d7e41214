"""The API reference page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by `make test` through `tools/chromium.py`) opens `/api/docs` on the
local host and must show every operation of `openapi.yaml`, with no request leaving the machine
and nothing logged to the console.

Without Chromium the test skips locally and fails under CI=true, where it must run."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.api_docs import swagger_ui
from tools import chromium

pytestmark = pytest.mark.e2e

RENDER_SECONDS = 30
DOCUMENT = Path(__file__).resolve().parents[2] / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def documented_operations() -> set[str]:
    """METHOD path of every operation, and METHOD name of every webhook (OpenAPI 3.1 webhooks
    have names, not paths; Swagger UI shows the name where a path would be)."""
    document = yaml.safe_load(DOCUMENT.read_text())
    return {
        f"{method.upper()} {key}"
        for section in ("paths", "webhooks")
        for key, item in document.get(section, {}).items()
        for method in HTTP_METHODS
        if method in item
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    installed = chromium.find()
    if installed is None:
        reason = f"Chromium and chromedriver are missing; {chromium.INSTALL_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI must run the browser test)")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = installed.browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(installed.driver))
    driver.set_page_load_timeout(RENDER_SECONDS)
    yield driver
    driver.quit()


def rendered_operations(driver: Any) -> set[str]:
    """(METHOD path) of every operation block Swagger UI drew."""
    from selenium.webdriver.common.by import By

    shown = set()
    for block in driver.find_elements(By.CSS_SELECTOR, ".opblock"):
        method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
        path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
            "data-path"
        )
        shown.add(f"{method.upper()} {path}")
    return shown


@pytest.mark.parametrize("page", ["/api/docs", "/api/docs/"])
def test_the_reference_page_renders_every_operation_of_the_document(
    browser: Any, base_url: str, page: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    expected = documented_operations()
    browser.get(base_url + page)
    WebDriverWait(browser, RENDER_SECONDS).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock"))
    )
    WebDriverWait(browser, RENDER_SECONDS).until(
        lambda d: len(rendered_operations(d)) >= len(expected)
    )
    assert rendered_operations(browser) == expected
    title = browser.find_element(By.CSS_SELECTOR, ".info .title").text
    assert yaml.safe_load(DOCUMENT.read_text())["info"]["title"] in title

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert f"{origin}/api/openapi.yaml" in loaded
    assert [url for url in loaded if not url.startswith((origin, "data:"))] == []
    problems = [entry for entry in browser.get_log("browser") if entry["level"] != "INFO"]
    assert problems == [], "the page logged warnings or errors (a blocked or missing file?)"


@pytest.mark.parametrize(
    "path",
    [
        "/api/docs/../host.json",
        "/api/docs/%2e%2e/%2e%2e/host.json",
        "/api/docs/..%2f..%2flocal.settings.json.example",
        f"/api/docs/{swagger_ui().name}/../../../shared/settings.py",
    ],
)
def test_paths_out_of_the_reference_folder_are_404_over_http(base_url: str, path: str) -> None:
    """Sent byte for byte (no client-side `..` folding), as an attacker would."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404, body
    assert b"import" not in body and b"Eby8" not in body
