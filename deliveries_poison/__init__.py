import azure.functions as func

from shared.app import current
from shared.logs import invocation


def main(msg: func.QueueMessage, context: func.Context) -> None:
    with invocation(context):
        current().message_deliveries.fail_poisoned(msg.get_body())
