import azure.functions as func

from shared.http import serve
from shared.messages.api import send


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, send)
