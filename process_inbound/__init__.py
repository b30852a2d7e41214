import azure.functions as func

from shared import app
from shared.inbound.processing import process_inbound


def main(msg: func.QueueMessage) -> None:
    process_inbound(app.current(), msg.get_body())
