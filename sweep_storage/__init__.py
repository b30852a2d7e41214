import azure.functions as func

from shared.app import current
from shared.logs import invocation
from shared.media.sweep import sweep_orphan_blobs


def main(timer: func.TimerRequest, context: func.Context) -> None:
    with invocation(context):
        sweep_orphan_blobs(current())
