"""Password hashing: argon2id at the OWASP minimum (19 MiB, t=2, p=1)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so an unknown user costs the same time."""
    return _HASHER.hash("not-a-real-password-only-for-equal-timing")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-time check; a missing user still pays for one full hash."""
    try:
        matched = _HASHER.verify(stored_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and stored_hash is not None
