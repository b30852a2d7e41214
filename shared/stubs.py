"""Authenticated placeholders for endpoints whose capability has not landed yet."""

from __future__ import annotations

import azure.functions as func

from shared.app import App
from shared.errors import NotImplementedYet
from shared.http import authenticate


def not_yet(req: func.HttpRequest, app: App) -> func.HttpResponse:
    authenticate(req, app)
    raise NotImplementedYet("This endpoint is not available yet.")
