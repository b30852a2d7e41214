import azure.functions as func

from shared.api_docs import api_docs
from shared.http import serve


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, api_docs)
