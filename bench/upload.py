"""Upload benchmark: the upload handler end to end for a 5 MB file, next to its floor.

Run: `make bench` (or `.venv/bin/python -m bench.upload`). Starts its own in-memory
Azurite. In one run it times, for the same 5,242,880-byte file:
- the handler (`upload_media.main`: auth, checks, blob, record, SAS), base64 and int-array JSON
  bodies, against the floor: the fastest parse of the same body (msgspec) plus a raw
  azure-storage-blob upload of the bytes (target for base64: at most 1.2x);
- the multipart handler against a raw SDK upload of the same bytes (target: at most 1.1x);
- what the handler does beyond the floor, each piece alone, so the remaining difference shows;
- peak memory (tracemalloc) of one upload, for JSON base64 (target 3x the file) and multipart
  (2x), with the request body counted (the host holds it) and without;
- parsing alone, with peak memory: ours, msgspec `list[int]`, stdlib json, pydantic `list[int]`.
"""

from __future__ import annotations

import base64
import gc
import hashlib
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
from urllib3 import encode_multipart_formdata

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


def paired(ours: Callable[[], Any], floor: Callable[[], Any]) -> tuple[float, float]:
    """Median ms of each, the runs interleaved so that both meet the same load."""
    a, b = [], []
    for _ in range(RUNS):
        a.append(median_ms(ours, 1))
        b.append(median_ms(floor, 1))
    return statistics.median(a), statistics.median(b)


def pieces(app: Any, account: Any, payload: bytes, body: bytes, decoder: Any) -> None:
    """Each thing the base64 handler does beyond the floor, timed alone. The handler overlaps
    the user and number reads with decoding and hashing, and removes the blob's unrecorded tag
    after answering; what it cannot overlap is the record write, which must follow the blob."""
    from shared.media.store import MEDIA_TABLE
    from shared.media.upload_request import parse_upload

    table = app.storage.table(MEDIA_TABLE)
    blob = app.storage.container("benchfloor").get_blob_client("tagged.jpg")
    counter = iter(range(10**9))

    def record() -> None:
        table.create_entity({"PartitionKey": "bench", "RowKey": str(next(counter)), "size": 1})

    rows: list[tuple[str, Callable[[], Any]]] = [
        ("authenticate (password cached)", lambda: app.auth.authenticate(account.authorization)),
        ("number owner read", lambda: app.directory.number_owner(account.number)),
        ("our parse + base64 decode", lambda: parse_upload(body, SIZE).decode_data(SIZE)),
        ("floor's parse (msgspec struct)", lambda: decoder.decode(body)),
        ("sha256 of the file", lambda: hashlib.sha256(payload).hexdigest()),
        ("blob PUT with metadata + tag", lambda: blob.upload_blob(
            payload, overwrite=True, metadata={"sha256": "x" * 64},
            tags={"unrecorded": "2026-01-01T00:00:00.000000Z x"})),
        ("raw blob PUT (floor)", lambda: blob.upload_blob(payload, overwrite=True)),
        ("record write (create_entity)", record),
        ("untag (after the answer)", lambda: blob.set_blob_tags({})),
        ("sign the 99-year URL", lambda: app.media.sign("x/y.jpg")),
    ]  # fmt: skip
    print("\nWhat the base64 handler does beyond its floor, each alone (median ms)")
    for name, fn in rows:
        print(f"  {name:<34} {median_ms(fn):>7.2f}")


def memory(
    request: Callable[..., func.HttpRequest], b64_body: bytes, form_body: bytes, form_type: str
) -> None:
    """Peak traced memory of one upload, in multiples of the file: counting the request body
    the host already holds, and beyond it."""
    import upload_media

    print(f"\nPeak memory of one {SIZE:,}-byte upload (tracemalloc), multiples of the file")
    print(f"{'body':<10} {'with body':>10} {'beyond body':>12} {'target':>7}")
    for name, body, content_type, target in (
        ("base64", b64_body, "application/json", 3.0),
        ("multipart", form_body, form_type, 2.0),
    ):
        req = request(body, content_type)
        gc.collect()
        tracemalloc.start()
        response = upload_media.main(req, None)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert response.status_code == 201, response.get_body()
        beyond = peak / SIZE
        print(f"{name:<10} {beyond + len(body) / SIZE:>10.2f} {beyond:>12.2f} {target:>7.1f}")


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

        form_body, form_type = encode_multipart_formdata(
            [("phoneNumber", account.number), ("tenantId", account.tenant_id),
             ("file", ("big.jpg", payload, "image/jpeg"))]
        )  # fmt: skip

        def request(body: bytes, content_type: str = "application/json") -> func.HttpRequest:
            return func.HttpRequest(
                method="POST",
                url="http://localhost/api/v1/media",
                headers={"Authorization": account.authorization, "Content-Type": content_type,
                         "Content-Length": str(len(body))},
                params={},
                route_params={},
                body=body,
            )  # fmt: skip

        def handler(body: bytes, content_type: str = "application/json") -> Callable[[], None]:
            def run() -> None:
                response = upload_media.main(request(body, content_type), None)  # type: ignore[arg-type]
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

        def raw_put() -> None:
            container.upload_blob("floor.jpg", payload, overwrite=True)

        b64_decoder = msgspec.json.Decoder(Base64Body)
        int_decoder = msgspec.json.Decoder(IntsBody)
        handler(b64_body)()  # warm: container policy, auth cache, table creation
        handler(form_body, form_type)()
        rows = []
        for name, body, decoder, to_bytes in (
            ("base64", b64_body, b64_decoder, False),
            ("int array", int_body, int_decoder, True),
        ):
            # Alternated, so both see the same machine.
            ours, bottom = paired(handler(body), floor(body, decoder, to_bytes))
            rows.append(
                (name, len(body), ours, bottom, ours / bottom, "1.20" if name == "base64" else "-")
            )
        ours, bottom = paired(handler(form_body, form_type), raw_put)
        rows.append(("multipart", len(form_body), ours, bottom, ours / bottom, "1.10"))

        print(f"\nUpload handler vs floor, {SIZE:,}-byte file, median of {RUNS} runs")
        header = ("body", "body bytes", "handler ms", "floor ms", "ratio", "target")
        print("{:<10} {:>12} {:>11} {:>9} {:>6} {:>7}".format(*header))
        for name, size, ours, bottom, ratio, target in rows:
            print(f"{name:<10} {size:>12,} {ours:>11.1f} {bottom:>9.1f} {ratio:>6.2f} {target:>7}")

        pieces(app, account, payload, b64_body, b64_decoder)
        memory(request, b64_body, form_body, form_type)

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
