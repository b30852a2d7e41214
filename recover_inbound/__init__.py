import azure.functions as func

from shared.app import current
from shared.logs import invocation


def main(timer: func.TimerRequest, context: func.Context) -> None:
    with invocation(context):
        current().inbound_recovery.run()
