"""HTTP Basic authentication of customers, and the check that they may act for a tenant.

Every API call carries Basic credentials, so a successful argon2 verification is cached briefly.
The cache key is an HMAC (with a per-process random key) over the email, the stored hash and the
password: the cache never holds a password, and a changed password (new hash) misses it.

Failed logins are throttled (`shared.login_throttle`, shared by all instances) before any argon2
work, so password guessing is slow and costs us little; see `LoginThrottle` for the limits and why
none of them is a permanent lockout.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.errors import Forbidden, Unauthorized
from shared.login_throttle import LoginThrottle
from shared.overlap import beside
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


class Authenticator:
    def __init__(
        self,
        directory: TenantDirectory,
        throttle: LoginThrottle,
        *,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._ttl = cache_seconds
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        self.throttle = throttle
        # Verifications of one email run one at a time, so a burst of parallel guesses sees each
        # earlier failure before its own check (and a burst of correct ones hits the cache).
        self._user_locks = tuple(threading.Lock() for _ in range(_USER_LOCK_STRIPES))

    def authenticate(self, header: str | None, client: str | None = None) -> Principal:
        """The principal for a Basic header; `client` is the caller's address (throttling)."""
        email, password = parse_basic(header)
        # The user's row and the throttle's rows are independent reads: overlapped.
        lookup = beside(self._directory.get_user, email)
        stripe = hmac.new(self._key, email.lower().encode(), hashlib.sha256).digest()
        with self._user_locks[int.from_bytes(stripe[:4], "big") % _USER_LOCK_STRIPES]:
            # Even a cached (known correct) password is checked: answering it while the caller is
            # throttled would tell a guesser which guess was right.
            try:
                attempt = self.throttle.check(email, client)
            finally:
                user = lookup.result()
            stored = user.password_hash if user else None
            if not self._cached(email, stored, password):
                if not verify_password(stored, password):
                    self.throttle.failed(attempt)
                    raise Unauthorized()
                self._remember(email, stored, password)
        assert user is not None
        self.throttle.succeeded(attempt)
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
