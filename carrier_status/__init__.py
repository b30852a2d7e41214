import azure.functions as func

from shared.http import serve
from shared.messages.api import carrier_status


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, carrier_status)
