import azure.functions as func

from shared.app import current
from shared.inbound.recovery import recover_inbound
from shared.logs import invocation


def main(timer: func.TimerRequest, context: func.Context) -> None:
    with invocation(context):
        recover_inbound(current())
