import azure.functions as func

from shared.app import current
from shared.logs import invocation


def main(blob: func.blob.InputStream, context: func.Context) -> None:
    with invocation(context):
        current().staging.receive(blob)
