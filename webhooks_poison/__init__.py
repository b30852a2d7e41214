import azure.functions as func

from shared.app import current
from shared.logs import invocation
from shared.webhooks.deliveries import dead_letter_poisoned


def main(msg: func.QueueMessage, context: func.Context) -> None:
    with invocation(context):
        dead_letter_poisoned(current(), msg.get_body())
