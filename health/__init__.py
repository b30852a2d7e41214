import azure.functions as func

from shared.health import health
from shared.http import serve


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, health)
