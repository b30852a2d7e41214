import azure.functions as func

from shared.app import current
from shared.inbound.processing import fail_poisoned
from shared.logs import invocation


def main(msg: func.QueueMessage, context: func.Context) -> None:
    with invocation(context):
        fail_poisoned(current(), msg.get_body())
