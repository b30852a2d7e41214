import azure.functions as func

from shared.app import current
from shared.logs import invocation
from shared.messages.service import fail_poisoned


def main(msg: func.QueueMessage, context: func.Context) -> None:
    with invocation(context):
        fail_poisoned(current(), msg.get_body())
