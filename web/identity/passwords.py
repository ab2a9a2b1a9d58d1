"""Password hashing with Argon2id (argon2-cffi: the OWASP-recommended algorithm, its
parameters kept in each hash so they can be raised later and old hashes still verify).
Hashing costs tens of milliseconds of CPU on purpose, so it runs in a worker thread."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the username is unknown, so that both answers take as long.
_DUMMY = _hasher.hash("whistle-no-such-user")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)
