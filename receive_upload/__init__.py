import azure.functions as func

from shared.app import current
from shared.logs import invocation
from shared.media.staging import receive_staged


def main(blob: func.blob.InputStream, context: func.Context) -> None:
    with invocation(context):
        receive_staged(blob, current())
