"""Login throttle benchmark: what the shared throttle (Table Storage) costs per login, next to the
same throttle on in-process state (what each instance used to keep on its own).

Run: `.venv/bin/python -m bench.throttle [--requests 300]`. Starts its own in-memory Azurite and
times, per login, the throttle's own work (check, then succeeded or failed) and the whole
`Authenticator.authenticate` (a success hits the verification cache; a failure runs argon2), with
the storage calls each makes. Limits are set out of reach so every failure takes the failure path.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.auth import Authenticator
from shared.errors import Unauthorized
from shared.login_throttle import LoginThrottle, ThrottleRecords, ThrottleRow, ThrottleTable
from shared.settings import Settings
from shared.storage import Storage
from shared.tenancy import TenantDirectory
from tests.conftest import PASSWORD
from tools import azurite

UNREACHABLE = 10**9


class MemoryRecords:
    """The rows in a dict, with versions for etags: the in-process baseline."""

    def __init__(self) -> None:
        self._rows: dict[str, ThrottleRow] = {}
        self._version = 0

    def read(self, key: str) -> ThrottleRow:
        row = self._rows.get(key)
        return copy.deepcopy(row) if row is not None else ThrottleRow()

    def write(self, key: str, row: ThrottleRow) -> bool:
        stored = self._rows.get(key)
        if (stored.etag if stored else None) != row.etag:
            return False
        self._version += 1
        self._rows[key] = copy.deepcopy(row)
        self._rows[key].etag = str(self._version)
        return True


@dataclass
class Counting:
    records: ThrottleRecords
    reads: int = 0
    writes: int = 0

    def read(self, key: str) -> ThrottleRow:
        self.reads += 1
        return self.records.read(key)

    def write(self, key: str, row: ThrottleRow) -> bool:
        self.writes += 1
        return self.records.write(key, row)


@dataclass
class Result:
    scenario: str
    store: str
    millis: list[float] = field(default_factory=list)
    reads: float = 0.0
    writes: float = 0.0


def header(email: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()


def measure(
    scenario: str, store: str, counting: Counting, requests: int, login: Callable[[int], None]
) -> Result:
    login(-1)  # warm up: tables created, the address known, the verification cached
    counting.reads = counting.writes = 0
    result = Result(scenario, store)
    for n in range(requests):
        started = time.perf_counter()
        login(n)
        result.millis.append((time.perf_counter() - started) * 1000)
    result.reads, result.writes = counting.reads / requests, counting.writes / requests
    return result


def scenarios(
    store: str, records: ThrottleRecords, directory: TenantDirectory, email: str, requests: int
) -> list[Result]:
    counting = Counting(records)
    throttle = LoginThrottle(
        counting, per_user_address=UNREACHABLE, per_address=UNREACHABLE, per_user=UNREACHABLE
    )
    auth = Authenticator(directory, throttle)
    known, attacker = "192.0.2.10", "203.0.113.66"

    def success_known(_: int) -> None:
        throttle.succeeded(throttle.check(email, known))

    def success_new_address(n: int) -> None:
        throttle.succeeded(throttle.check(email, f"2001:db8::{n + 2:x}"))

    def failure(_: int) -> None:
        throttle.failed(throttle.check(email, attacker))

    def login_known(_: int) -> None:
        auth.authenticate(header(email, PASSWORD), known)

    def login_wrong(_: int) -> None:
        with contextlib.suppress(Unauthorized):
            auth.authenticate(header(email, "wrong password"), attacker)

    return [
        measure("throttle: success, known address", store, counting, requests, success_known),
        measure("throttle: success, new address", store, counting, requests, success_new_address),
        measure("throttle: failure", store, counting, requests, failure),
        measure("authenticate: success (cached)", store, counting, requests, login_known),
        measure("authenticate: failure (argon2)", store, counting, requests // 10, login_wrong),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    emulator = azurite.start()
    try:
        storage = Storage.from_settings(
            Settings(media_storage_connection_string=emulator.connection_string)
        )
        directory = TenantDirectory(storage)
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        directory.create_user(email, PASSWORD)
        table = ThrottleTable(storage, f"throttle{uuid.uuid4().hex[:12]}")
        results = [
            *scenarios("in-memory", MemoryRecords(), directory, email, args.requests),
            *scenarios("table", table, directory, email, args.requests),
        ]
    finally:
        emulator.stop()
    print(f"{'per login':36} {'state':10} {'reads':>6} {'writes':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for r in sorted(results, key=lambda r: r.scenario):
        p99 = statistics.quantiles(r.millis, n=100)[98]
        print(
            f"{r.scenario:36} {r.store:10} {r.reads:6.2f} {r.writes:6.2f} "
            f"{statistics.median(r.millis):8.2f} {p99:8.2f}"
        )


if __name__ == "__main__":
    main()
