import azure.functions as func

from shared.http import serve
from shared.inbound.receive import receive


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, receive)
