"""Upload benchmark: the upload handler end to end for a 5 MB file, next to its floor.

Run: `make bench` (or `.venv/bin/python -m bench.upload`). Starts its own in-memory
Azurite. In one run it times, for the same 5,242,880-byte file:
- the handler (`upload_media.main`: auth, checks, blob, record, SAS), base64 and int-array bodies;
- the floor: the fastest parse of the same body (msgspec) plus a raw azure-storage-blob upload;
- parsing alone, with peak memory: ours, msgspec `list[int]`, stdlib json, pydantic `list[int]`.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import azure.functions as func
import msgspec
from pydantic import TypeAdapter

SIZE = 5 * 1024 * 1024
RUNS = 7


def median_ms(fn: Callable[[], Any], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def peak_mib(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak / (1024 * 1024)


class Base64Body(msgspec.Struct):
    phoneNumber: str
    fileName: str
    contentType: str
    data: bytes
    tenantId: str


class IntsBody(msgspec.Struct):
    phoneNumber: str
    fileName: str
    contentType: str
    data: list[int]
    tenantId: str


def main() -> None:
    import upload_media
    from shared.app import App, install
    from shared.media.upload_request import parse_upload
    from shared.settings import Settings
    from tests.conftest import make_account
    from tools import azurite

    emulator = azurite.start()
    try:
        app = App.build(Settings(media_storage_connection_string=emulator.connection_string))
        install(app)
        account = make_account(app)
        payload = b"\xff\xd8\xff\xe0" + os.urandom(SIZE - 4)  # JPEG signature, incompressible
        fields = {
            "phoneNumber": account.number,
            "fileName": "big.jpg",
            "contentType": "image/jpeg",
            "tenantId": account.tenant_id,
        }
        b64_body = json.dumps({**fields, "data": base64.b64encode(payload).decode()}).encode()
        int_body = json.dumps({**fields, "data": list(payload)}, separators=(",", ":")).encode()
        container = app.storage.container("benchfloor")

        def handler(body: bytes) -> Callable[[], None]:
            def run() -> None:
                request = func.HttpRequest(
                    method="POST",
                    url="http://localhost/api/v1/media",
                    headers={"Authorization": account.authorization},
                    params={},
                    route_params={},
                    body=body,
                )
                response = upload_media.main(request, None)  # type: ignore[arg-type]
                assert response.status_code == 201, response.get_body()

            return run

        def floor(
            body: bytes, decoder: msgspec.json.Decoder[Any], to_bytes: bool
        ) -> Callable[[], None]:
            def run() -> None:
                data = decoder.decode(body).data
                data = bytes(data) if to_bytes else data
                container.upload_blob("floor.jpg", data, overwrite=True)

            return run

        b64_decoder = msgspec.json.Decoder(Base64Body)
        int_decoder = msgspec.json.Decoder(IntsBody)
        handler(b64_body)()  # warm: container policy, auth cache, table creation
        rows = []
        for name, body, decoder, to_bytes in (
            ("base64", b64_body, b64_decoder, False),
            ("int array", int_body, int_decoder, True),
        ):
            ours = median_ms(handler(body))
            bottom = median_ms(floor(body, decoder, to_bytes))
            rows.append((name, len(body), ours, bottom, ours / bottom))

        print(f"\nUpload handler vs floor, {SIZE:,}-byte file, median of {RUNS} runs")
        print(f"{'body':<10} {'body bytes':>12} {'handler ms':>11} {'floor ms':>9} {'ratio':>6}")
        for name, size, ours, bottom, ratio in rows:
            print(f"{name:<10} {size:>12,} {ours:>11.1f} {bottom:>9.1f} {ratio:>6.2f}")

        msgspec_ints = msgspec.json.Decoder(list[int])
        raw_array = msgspec.json.encode(list(payload))
        pydantic_ints = TypeAdapter(list[int])

        def ours_parse() -> bytes:
            return parse_upload(int_body, SIZE).decode_data(SIZE)

        parsers: list[tuple[str, Callable[[], Any]]] = [
            ("ours (envelope + data -> bytes)", ours_parse),
            ("msgspec list[int]", lambda: msgspec_ints.decode(raw_array)),
            ("stdlib json.loads", lambda: json.loads(raw_array)),
            ("pydantic list[int]", lambda: pydantic_ints.validate_json(raw_array)),
        ]
        print(f"\nParsing a {SIZE:,}-element integer array")
        print(f"{'parser':<34} {'median ms':>10} {'peak MiB':>9}")
        for name, fn in parsers:
            print(f"{name:<34} {median_ms(fn):>10.1f} {peak_mib(fn):>9.1f}")
    finally:
        install(None)
        emulator.stop()


if __name__ == "__main__":
    main()
