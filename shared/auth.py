"""HTTP Basic authentication of customers, and the check that they may act for a tenant.

Every API call carries Basic credentials, so a successful argon2 verification is cached briefly.
The cache key is an HMAC (with a per-process random key) over the email, the stored hash and the
password: the cache never holds a password, and a changed password (new hash) misses it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from shared.errors import Forbidden, Unauthorized
from shared.passwords import verify_password
from shared.tenancy import TenantDirectory

MAX_AUTH_HEADER = 4096
_CACHE_LIMIT = 10_000


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


class Authenticator:
    def __init__(
        self,
        directory: TenantDirectory,
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

    def authenticate(self, header: str | None) -> Principal:
        email, password = parse_basic(header)
        user = self._directory.get_user(email)
        stored = user.password_hash if user else None
        if not self._cached(email, stored, password):
            if not verify_password(stored, password):
                raise Unauthorized()
            self._remember(email, stored, password)
        assert user is not None
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
