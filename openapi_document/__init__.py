import azure.functions as func

from shared.http import serve
from shared.openapi import openapi_document


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, openapi_document)
