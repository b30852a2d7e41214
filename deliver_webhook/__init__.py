import azure.functions as func

from shared.app import current
from shared.logs import invocation


def main(msg: func.QueueMessage, context: func.Context) -> None:
    with invocation(context):
        current().webhooks.handle(msg.get_body())
