"""The one boundary: unexpected errors become a 500 problem, storage outages a 503."""

import json
import logging

import azure.functions as func
import pytest
from azure.core.exceptions import ServiceRequestError

from shared.app import App
from shared.http import serve
from tests.conftest import http_request


def test_unexpected_error_is_500_problem_with_correlation_id_and_no_trace(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(req: func.HttpRequest, app: App) -> func.HttpResponse:
        raise RuntimeError("secret internal detail")

    with caplog.at_level(logging.ERROR):
        response = serve(http_request("GET", "/x"), None, broken)
    body = json.loads(response.get_body())
    assert response.status_code == 500
    assert body["code"] == "internal_error"
    assert body["correlationId"] == response.headers["X-Correlation-Id"]
    assert "secret internal detail" not in response.get_body().decode()
    assert "secret internal detail" in caplog.text  # logged with its stack trace for operators


def test_storage_unreachable_is_503_with_retry_after(app: App) -> None:
    def offline(req: func.HttpRequest, app: App) -> func.HttpResponse:
        raise ServiceRequestError("connection refused to 127.0.0.1:10000")

    response = serve(http_request("GET", "/x"), None, offline)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "127.0.0.1" not in response.get_body().decode()


def test_traceparent_becomes_the_correlation_id(app: App) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    request = http_request("GET", "/x", headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"})
    response = serve(request, None, lambda req, app: func.HttpResponse("ok"))
    assert response.headers["X-Correlation-Id"] == trace
