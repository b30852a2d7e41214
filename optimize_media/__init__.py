import azure.functions as func

from shared.app import current
from shared.media.optimization import optimize_blob


def main(blob: func.blob.InputStream) -> None:
    optimize_blob(blob, current())
