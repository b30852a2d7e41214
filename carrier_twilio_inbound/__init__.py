import azure.functions as func

from shared.carriers.api import twilio_inbound
from shared.http import serve


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context, twilio_inbound)
