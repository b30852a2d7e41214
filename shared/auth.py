"""HTTP Basic authentication of customers, and the check that they may act for a tenant.

Every API call carries Basic credentials, so a successful argon2 verification is cached briefly.
The cache key is an HMAC (with a per-process random key) over the email, the stored hash and the
password: the cache never holds a password, and a changed password (new hash) misses it.

Failed logins are throttled (`LoginThrottle`) before any argon2 work, so password guessing is slow
and costs us little; see the class for the limits and why none of them is a permanent lockout.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.errors import Forbidden, LoginThrottled, Unauthorized
from shared.passwords import verify_password
from shared.tenancy import TenantDirectory

MAX_AUTH_HEADER = 4096
_CACHE_LIMIT = 10_000
_USER_LOCK_STRIPES = 1024


@dataclass(frozen=True)
class Principal:
    email: str
    tenant_ids: frozenset[str]

    def require_tenant(self, tenant_id: str) -> None:
        if tenant_id not in self.tenant_ids:
            raise Forbidden(f"you may not act for tenant {tenant_id}", code="tenant_forbidden")


def parse_basic(header: str | None) -> tuple[str, str]:
    """(email, password) from an Authorization header; 401 for anything malformed."""
    if not header or len(header) > MAX_AUTH_HEADER:
        raise Unauthorized()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        raise Unauthorized()
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthorized() from None
    email, colon, password = decoded.partition(":")
    if not colon or not email or not password:
        raise Unauthorized()
    return email, password


def client_address(headers: Mapping[str, str]) -> str | None:
    """The caller's address as the platform's front end saw it: the last hop of
    `X-Forwarded-For`, or None when absent or unreadable. Used only to key login throttling,
    never to grant anything.

    Only the last entry is trustworthy: the client writes whatever it likes into the header, and
    each proxy appends the address it accepted the connection from. The App Service front end
    appends the client as `ip:port`; Azure Front Door "appends the client socket IP" to an
    existing header (https://learn.microsoft.com/azure/frontdoor/front-door-http-headers-protocol).
    The first hop is the client's own claim: keying on it let one caller reset its limits.
    """
    values = [v for k, v in headers.items() if k.lower() == "x-forwarded-for"]
    last = ",".join(values).rsplit(",", 1)[-1].strip()
    if last.startswith("["):  # [v6]:port
        last = last[1:].partition("]")[0]
    elif last.count(":") == 1:  # v4:port
        last = last.partition(":")[0]
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return None


@dataclass
class _Bucket:
    level: float  # failures not yet drained
    at: float  # when `level` was last brought up to date


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
    per-user limit applies. The state is per process (in memory): each Azure instance throttles
    on its own, so a scaled-out app allows up to `instances` times the limits.
    """

    def __init__(
        self,
        *,
        per_user_address: int = 10,
        per_address: int = 50,
        per_user: int = 100,
        window_seconds: float = 300.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(per_user_address, per_address, per_user) < 1 or window_seconds <= 0:
            raise ValueError("limits must be at least 1 and the window positive")
        self._limits = {"pair": per_user_address, "address": per_address, "user": per_user}
        self._window = window_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def _keys(self, email: str, address: str | None) -> list[tuple[str, ...]]:
        user = email.lower()
        keys: list[tuple[str, ...]] = [("user", user)]
        if address is not None:
            keys += [("pair", user, address), ("address", address)]
        return keys

    def _level(self, key: tuple[str, ...], now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        rate = self._limits[key[0]] / self._window
        return max(0.0, bucket.level - (now - bucket.at) * rate)

    def check(self, email: str, address: str | None) -> None:
        """Raise `LoginThrottled` (429) when another failure would exceed a limit."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            exempt = address is not None and self._is_known(email, address, now)
            for key in self._keys(email, address):
                if key[0] == "user" and exempt:
                    continue
                limit = self._limits[key[0]]
                excess = self._level(key, now) + 1 - limit
                if excess > 0:
                    wait = max(wait, excess * self._window / limit)
        if wait > 0:
            raise LoginThrottled(
                "Too many failed logins; try again later.", retry_after=max(1, math.ceil(wait))
            )

    def failed(self, email: str, address: str | None) -> None:
        now = self._clock()
        with self._lock:
            for key in self._keys(email, address):
                self._buckets[key] = _Bucket(self._level(key, now) + 1, now)
                self._buckets.move_to_end(key)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)

    def succeeded(self, email: str, address: str | None) -> None:
        if address is None:
            return
        user = email.lower()
        with self._lock:
            self._buckets.pop(("pair", user, address), None)
            self._known[(user, address)] = self._clock()
            self._known.move_to_end((user, address))
            while len(self._known) > self._max_keys:
                self._known.popitem(last=False)

    def _is_known(self, email: str, address: str, now: float) -> bool:
        # Known for a day after the last success: long enough to outlast an attack's window.
        seen = self._known.get((email.lower(), address))
        return seen is not None and now - seen < 86_400


class Authenticator:
    def __init__(
        self,
        directory: TenantDirectory,
        *,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._directory = directory
        self._ttl = cache_seconds
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        self.throttle = throttle or LoginThrottle(clock=clock)
        # Verifications of one email run one at a time, so a burst of parallel guesses sees each
        # earlier failure before its own check (and a burst of correct ones hits the cache).
        self._user_locks = tuple(threading.Lock() for _ in range(_USER_LOCK_STRIPES))

    def authenticate(self, header: str | None, client: str | None = None) -> Principal:
        """The principal for a Basic header; `client` is the caller's address (throttling)."""
        email, password = parse_basic(header)
        self.throttle.check(email, client)
        user = self._directory.get_user(email)
        stored = user.password_hash if user else None
        stripe = hmac.new(self._key, email.lower().encode(), hashlib.sha256).digest()
        with self._user_locks[int.from_bytes(stripe[:4], "big") % _USER_LOCK_STRIPES]:
            self.throttle.check(email, client)
            if not self._cached(email, stored, password):
                if not verify_password(stored, password):
                    self.throttle.failed(email, client)
                    raise Unauthorized()
                self._remember(email, stored, password)
        assert user is not None
        self.throttle.succeeded(email, client)
        return Principal(user.email, user.tenant_ids)

    def _cache_key(self, email: str, stored: str | None, password: str) -> bytes:
        message = "\0".join((email.lower(), stored or "", password)).encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _cached(self, email: str, stored: str | None, password: str) -> bool:
        if stored is None or self._ttl <= 0:
            return False
        key = self._cache_key(email, stored, password)
        with self._lock:
            expires = self._verified.get(key)
            if expires is None:
                return False
            if expires < self._clock():
                del self._verified[key]
                return False
            return True

    def _remember(self, email: str, stored: str | None, password: str) -> None:
        if stored is None or self._ttl <= 0:
            return
        key = self._cache_key(email, stored, password)
        with self._lock:
            self._verified[key] = self._clock() + self._ttl
            self._verified.move_to_end(key)
            while len(self._verified) > _CACHE_LIMIT:
                self._verified.popitem(last=False)
