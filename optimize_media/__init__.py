import azure.functions as func

from shared.app import current
from shared.logs import invocation
from shared.media.optimization import optimize_blob


def main(blob: func.blob.InputStream, context: func.Context) -> None:
    with invocation(context):
        app = current()
        optimize_blob(blob, app.media, app.settings, app.carriers)
