import azure.functions as func

from shared import app
from shared.logs import invocation
from shared.webhooks.deliveries import deliver


def main(msg: func.QueueMessage, context: func.Context) -> None:
    with invocation(context):
        deliver(app.current(), msg.get_body())
