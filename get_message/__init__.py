import azure.functions as func

from shared.http import serve
from shared.messages.api import get_message


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, get_message)
