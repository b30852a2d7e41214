import azure.functions as func

from shared.app import current
from shared.logs import invocation
from shared.sweeps import sweep


def main(timer: func.TimerRequest, context: func.Context) -> None:
    with invocation(context):
        app = current()
        sweep(
            app.media,
            app.idempotency,
            app.sessions,
            app.carrier_statuses.replays,
            app.throttle_rows,
        )
