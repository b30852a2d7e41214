"""Failed-login throttling shared by every instance: leaky buckets kept in the table
`loginthrottle`, changed by etag-conditioned read-modify-write, so a scaled-out app allows the
same number of guesses as one instance.

Rows (partition = a hash of the key, so any email or address is a valid table key):
- `u<hash of the email>`: the user's bucket;
- `a<hash of the address>`: the address's bucket and, for each user tried or logged in from that
  address, the (user, address) bucket and when that user last logged in from there.
Keeping the (user, address) state in the address row makes the common login (a user at an address
it logged in from before) cost one point read and no write. Invariants: a bucket only fills on a
recorded failure and drains with time; a write that loses a race re-reads and applies its change
again, so no failure is lost; a storage failure answers 503 (`StorageUnavailable`): the throttle
fails closed, never letting unchecked guesses through.

Rows do not outlive their use: each write also writes a pointer in partition `expires-{hour}`
(the hour the row becomes idle), and the storage sweep removes rows idle for `IDLE_SECONDS`
through the pointers of past hours (`ThrottleTable.remove_idle`): one more write per throttle
write, and a sweep whose cost follows what there is to remove.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from shared.errors import AlreadyExists, ChangedMeanwhile, LoginThrottled
from shared.storage import Storage
from shared.tables import Row, Table

TABLE = "loginthrottle"
# A user is known at an address for a day after a success there: longer than an attack's window.
KNOWN_SECONDS = 86_400.0
# A success at a known address writes only when that knowledge is this old (or a failure is held).
KNOWN_REFRESH_SECONDS = 3_600.0
# Users remembered per address row; the oldest go first (they then fall back to the per-user
# limit). Far under the 32 K characters a table string property holds.
MAX_PAIRS = 256
_WRITE_TRIES = 8
_ROW = "throttle"


class Pair(msgspec.Struct, array_like=True):
    """One user at one address: its bucket, and when the user last logged in from there."""

    level: float = 0.0
    at: float = 0.0
    known_at: float | None = None

    def known(self, now: float, within: float = KNOWN_SECONDS) -> bool:
        return self.known_at is not None and now - self.known_at < within


@dataclass
class ThrottleRow:
    """A key's bucket (`level` failures not yet drained at `at`, seconds since the epoch); an
    address's row also holds its users (`pairs`, by user hash). `etag` None: not stored yet."""

    level: float = 0.0
    at: float = 0.0
    pairs: dict[str, Pair] = field(default_factory=dict)
    etag: str | None = None


class ThrottleRecords(Protocol):
    def read(self, key: str) -> ThrottleRow: ...

    def write(self, key: str, row: ThrottleRow) -> bool:
        """Store `row` if nobody changed it since it was read; False when somebody did."""
        ...


_pairs = msgspec.json.Decoder(dict[str, Pair])


class _Bucket(Row):
    """Partition: the key's hash; row: `throttle`. `pairs` is msgspec JSON (compact arrays);
    `written_at` (seconds since the epoch) is when the row last changed."""

    level: float
    at: float
    pairs: str = "{}"
    written_at: float = 0.0


class _Pointer(Row):
    """Partition: `expires-{hour}`, row: a bucket's key that may be idle from that hour on."""


_EXPIRY_PARTITION = "expires-"
# A row untouched this long holds nothing: its buckets drained (a window is minutes) and every
# user it knew is no longer known (KNOWN_SECONDS). The sweep removes it.
IDLE_SECONDS = KNOWN_SECONDS + 3_600.0
EXPIRY_BATCH = 2000


def _expiry_partition(moment: float) -> str:
    return _EXPIRY_PARTITION + time.strftime("%Y%m%dT%H", time.gmtime(moment))


class ThrottleTable:
    """The rows in Table Storage; storage failures arrive as `StorageUnavailable` (503)."""

    def __init__(
        self, storage: Storage, name: str = TABLE, clock: Callable[[], float] = time.time
    ) -> None:
        self._rows = Table.of(storage, name, _Bucket)
        self._pointers = Table.of(storage, name, _Pointer)
        self._clock = clock

    def read(self, key: str) -> ThrottleRow:
        stored = self._rows.get(key, _ROW)
        if stored is None:
            return ThrottleRow()
        return ThrottleRow(stored.level, stored.at, _pairs.decode(stored.pairs), stored.etag)

    def write(self, key: str, row: ThrottleRow) -> bool:
        now = self._clock()
        bucket = _Bucket(
            partition_key=key,
            row_key=_ROW,
            level=float(row.level),
            at=float(row.at),
            pairs=msgspec.json.encode(row.pairs).decode(),
            written_at=now,
            etag=row.etag,
        )
        # The pointer first: a row never exists without one, so none outlives its use. A row
        # written again later gets a later pointer; the earlier one then finds it busy.
        self._pointers.upsert(
            _Pointer(partition_key=_expiry_partition(now + IDLE_SECONDS), row_key=key)
        )
        try:
            if row.etag is None:
                self._rows.insert(bucket)
            else:
                self._rows.update(bucket)
        except (AlreadyExists, ChangedMeanwhile):
            return False
        return True

    def remove_idle(self, *, limit: int = EXPIRY_BATCH) -> int:
        """Delete at most `limit` rows idle for `IDLE_SECONDS`, found through the pointers of
        past hours (one range query: the cost follows what there is to remove); a row written
        meanwhile is kept (its etag changed, or it is not idle yet). The number deleted."""
        now = self._clock()
        due = self._pointers.keys_between(_EXPIRY_PARTITION, _expiry_partition(now), limit=limit)
        removed = 0
        for pointer in due:
            row = self._rows.get(pointer.row_key, _ROW)
            if row is not None and now - row.written_at >= IDLE_SECONDS:
                try:
                    self._rows.delete(row.partition_key, _ROW, etag=row.etag)
                    removed += 1
                except ChangedMeanwhile:
                    pass  # written just now: its own pointer comes later
            self._pointers.delete(pointer.partition_key, pointer.row_key)
        return removed


def _hash(kind: str, value: str) -> str:
    return kind + hashlib.sha256(value.encode()).hexdigest()[:32]


@dataclass
class LoginAttempt:
    """What `check` read, handed back to `failed`/`succeeded` so they need not read it again."""

    user: str  # the user's hash
    address: str | None
    address_row: ThrottleRow | None
    user_row: ThrottleRow | None


class LoginThrottle:
    """Failed-login throttling: a leaky bucket per key that fills by one per failure and drains
    at `limit / window` per second, so the limit is `limit` failures per `window` and a throttled
    caller gets one more try each `window / limit` seconds (Retry-After says when).

    Three keys per attempt, checked before the password is verified:
    - (user, address): the tight limit. Guessing one user's password from one address is slow;
      a success empties this bucket, so a user who mistyped recovers at once on success.
    - address: all users from one address (credential stuffing across accounts).
    - user: looser, for guessing spread over many addresses. It would let an attacker lock a user
      out, so addresses this user has logged in from successfully are exempt from it: the
      owner keeps working from known addresses while the attacker is throttled.
    Nothing is permanent: every bucket drains by itself. Without a known client address only the
    per-user limit applies. Attempts checked at the same moment on different instances may each
    pass before either failure is recorded: a burst can exceed a limit by the number of instances
    serving it, once; within one instance, `Authenticator` runs one user's attempts in turn.
    """

    def __init__(
        self,
        records: ThrottleRecords,
        *,
        per_user_address: int = 10,
        per_address: int = 50,
        per_user: int = 100,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if min(per_user_address, per_address, per_user) < 1 or window_seconds <= 0:
            raise ValueError("limits must be at least 1 and the window positive")
        self._records = records
        self._pair_limit, self._address_limit, self._user_limit = (
            per_user_address, per_address, per_user
        )  # fmt: skip
        self._window = window_seconds
        self._clock = clock

    def check(self, email: str, address: str | None) -> LoginAttempt:
        """Raise `LoginThrottled` (429) when another failure would exceed a limit."""
        now = self._clock()
        user = _hash("u", email.lower())
        attempt = LoginAttempt(user, address, None, None)
        wait = 0.0
        known = False
        if address is not None:
            row = attempt.address_row = self._records.read(_hash("a", address))
            pair = row.pairs.get(user, Pair())
            known = pair.known(now)
            wait = max(
                self._wait(row.level, row.at, self._address_limit, now),
                self._wait(pair.level, pair.at, self._pair_limit, now),
            )
        if not known:
            row = attempt.user_row = self._records.read(user)
            wait = max(wait, self._wait(row.level, row.at, self._user_limit, now))
        if wait > 0:
            raise LoginThrottled(
                "Too many failed logins; try again later.", retry_after=max(1, math.ceil(wait))
            )
        return attempt

    def failed(self, attempt: LoginAttempt) -> None:
        """Count a failure against every key of the attempt."""
        now = self._clock()

        def fill_user(row: ThrottleRow) -> bool:
            row.level, row.at = self._drained(row.level, row.at, self._user_limit, now) + 1, now
            return True

        def fill_address(row: ThrottleRow) -> bool:
            row.level, row.at = self._drained(row.level, row.at, self._address_limit, now) + 1, now
            pair = row.pairs.setdefault(attempt.user, Pair())
            pair.level, pair.at = self._drained(pair.level, pair.at, self._pair_limit, now) + 1, now
            self._prune(row, now)
            return True

        recorded = self._update(attempt.user, attempt.user_row, fill_user)
        if attempt.address is not None:
            key = _hash("a", attempt.address)
            recorded = self._update(key, attempt.address_row, fill_address) and recorded
        if not recorded:
            # Writers kept overtaking this one (a key under heavy attack): refuse rather than
            # leave a failure uncounted.
            raise LoginThrottled("Too many failed logins; try again later.", retry_after=1)

    def succeeded(self, attempt: LoginAttempt) -> None:
        """Empty the (user, address) bucket and remember the address as the user's; writes only
        when either has something to change."""
        if attempt.address is None:
            return
        now = self._clock()

        def clear_pair(row: ThrottleRow) -> bool:
            pair = row.pairs.get(attempt.user, Pair())
            if pair.level <= 0 and pair.known(now, KNOWN_REFRESH_SECONDS):
                return False
            row.pairs[attempt.user] = Pair(known_at=now)
            self._prune(row, now)
            return True

        # Losing every race here only delays clearing a bucket or refreshing a known address.
        self._update(_hash("a", attempt.address), attempt.address_row, clear_pair)

    def _update(
        self, key: str, row: ThrottleRow | None, change: Callable[[ThrottleRow], bool]
    ) -> bool:
        """Apply `change` to the stored row (it returns False when nothing is to be written);
        on a lost race read again and reapply. False when every try lost."""
        for _ in range(_WRITE_TRIES):
            current = row if row is not None else self._records.read(key)
            row = None
            if not change(current) or self._records.write(key, current):
                return True
        return False

    def _prune(self, row: ThrottleRow, now: float) -> None:
        live = {
            user: pair
            for user, pair in row.pairs.items()
            if self._drained(pair.level, pair.at, self._pair_limit, now) > 0 or pair.known(now)
        }
        if len(live) > MAX_PAIRS:
            latest = sorted(live.items(), key=lambda p: max(p[1].at, p[1].known_at or 0))
            live = dict(latest[-MAX_PAIRS:])
        row.pairs = live

    def _drained(self, level: float, at: float, limit: int, now: float) -> float:
        return max(0.0, level - max(0.0, now - at) * limit / self._window)

    def _wait(self, level: float, at: float, limit: int, now: float) -> float:
        """Seconds until one more failure fits under `limit`; 0 when it fits now."""
        excess = self._drained(level, at, limit, now) + 1 - limit
        return max(0.0, excess * self._window / limit)
