import azure.functions as func

from shared.app import current
from shared.logs import invocation
from shared.messages.service import deliver


def main(msg: func.QueueMessage, context: func.Context) -> None:
    with invocation(context):
        deliver(current(), msg.get_body())
