import azure.functions as func

from shared.http import serve
from shared.stubs import not_yet


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, not_yet)
