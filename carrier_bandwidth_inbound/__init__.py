import azure.functions as func

from shared.carriers.api import bandwidth_inbound
from shared.http import serve


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, bandwidth_inbound)
