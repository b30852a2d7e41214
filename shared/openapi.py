"""GET /api/openapi.yaml: the API description (`openapi.yaml` at the project root), served as
deployed. The file is read on the first request and kept; nothing is read at import."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import azure.functions as func

from shared.app import App

DOCUMENT = Path(__file__).resolve().parent.parent / "openapi.yaml"
MEDIA_TYPE = "application/yaml"


@cache
def document() -> bytes:
    return DOCUMENT.read_bytes()


def openapi_document(req: func.HttpRequest, app: App) -> func.HttpResponse:
    return func.HttpResponse(
        document(),
        status_code=200,
        mimetype=MEDIA_TYPE,
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )
