import azure.functions as func

from shared.http import serve
from shared.media.api import open_upload


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, open_upload)
