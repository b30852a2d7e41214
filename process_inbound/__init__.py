import azure.functions as func

from shared import app
from shared.inbound.processing import process_inbound
from shared.logs import invocation


def main(msg: func.QueueMessage, context: func.Context) -> None:
    with invocation(context):
        process_inbound(app.current(), msg.get_body())
