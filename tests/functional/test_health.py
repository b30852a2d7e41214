"""The health function called directly with real binding objects."""

import json

import health
from shared.app import App, install
from shared.settings import Settings
from tests.conftest import http_request
from tests.context import invocation_context
from tools.azurite import connection_string, free_port


def test_health_is_200_when_storage_answers(app: App) -> None:
    response = health.main(http_request("GET", "/api/health"), invocation_context())
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {
        "status": "ok",
        "storage": {"blob": "ok", "queue": "ok", "table": "ok"},
    }


def test_health_is_503_when_storage_is_unreachable(app: App) -> None:
    dead = connection_string(free_port(), free_port(), free_port())
    install(App.build(Settings(media_storage_connection_string=dead)))
    try:
        response = health.main(http_request("GET", "/api/health"), invocation_context())
    finally:
        install(app)
    assert response.status_code == 503
    assert json.loads(response.get_body())["storage"]["blob"] == "unreachable"
