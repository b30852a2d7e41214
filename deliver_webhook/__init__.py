import azure.functions as func

from shared import app
from shared.webhooks.deliveries import deliver


def main(msg: func.QueueMessage) -> None:
    deliver(app.current(), msg.get_body())
