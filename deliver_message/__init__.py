import azure.functions as func

from shared.app import current
from shared.messages.service import deliver


def main(msg: func.QueueMessage) -> None:
    deliver(current(), msg.get_body())
