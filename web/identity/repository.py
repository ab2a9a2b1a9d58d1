"""SQL over asyncpg for users and refresh tokens."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from shared.auth import Role
from web.identity.domain import Assignment, RefreshToken, User
from shared.db import Conn

_USER_COLUMNS = (
    "username, name, role, area, department_id, grids, password_hash, disabled, "
    "failed_logins, locked_until, created_at, updated_at"
)


def _user(row: asyncpg.Record) -> User:
    return User(
        username=row["username"],
        assignment=Assignment(
            name=row["name"],
            role=Role(row["role"]),
            area=row["area"],
            department_id=row["department_id"],
            grids=tuple(row["grids"]),
        ),
        password_hash=row["password_hash"],
        disabled=row["disabled"],
        failed_logins=row["failed_logins"],
        locked_until=row["locked_until"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def get_user(conn: Conn, username: str, *, lock: bool = False) -> User | None:
    sql = f"SELECT {_USER_COLUMNS} FROM users WHERE username = $1"
    row = await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), username)
    return _user(row) if row else None


async def list_users(conn: Conn, role: str | None, q: str | None) -> list[User]:
    rows = await conn.fetch(
        f"SELECT {_USER_COLUMNS} FROM users"
        " WHERE ($1::text IS NULL OR role = $1)"
        "   AND ($2::text IS NULL OR username ILIKE '%' || $2 || '%' OR name ILIKE '%' || $2 || '%')"
        " ORDER BY role, username",
        role,
        q,
    )
    return [_user(r) for r in rows]


async def insert_user(
    conn: Conn, username: str, a: Assignment, password_hash: str, now: datetime
) -> bool:
    """False when the username is taken."""
    status = await conn.execute(
        "INSERT INTO users (username, name, role, area, department_id, grids, password_hash,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
        " ON CONFLICT (username) DO NOTHING",
        username,
        a.name,
        a.role.value,
        a.area,
        a.department_id,
        list(a.grids),
        password_hash,
        now,
    )
    return status.endswith(" 1")


async def update_user(
    conn: Conn,
    username: str,
    a: Assignment,
    disabled: bool,
    password_hash: str,
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE users SET name = $2, role = $3, area = $4, department_id = $5, grids = $6,"
        " disabled = $7, password_hash = $8, updated_at = $9,"
        " failed_logins = CASE WHEN password_hash = $8 THEN failed_logins ELSE 0 END,"
        " locked_until = CASE WHEN password_hash = $8 THEN locked_until ELSE NULL END"
        " WHERE username = $1",
        username,
        a.name,
        a.role.value,
        a.area,
        a.department_id,
        list(a.grids),
        disabled,
        password_hash,
        now,
    )


async def record_login(
    conn: Conn, username: str, failures: int, locked_until: datetime | None
) -> None:
    await conn.execute(
        "UPDATE users SET failed_logins = $2, locked_until = $3 WHERE username = $1",
        username,
        failures,
        locked_until,
    )


async def insert_refresh(
    conn: Conn,
    token_hash: bytes,
    username: str,
    family: UUID,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, username, family, issued_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        token_hash,
        username,
        family,
        now,
        expires_at,
    )


async def get_refresh(conn: Conn, token_hash: bytes) -> RefreshToken | None:
    row = await conn.fetchrow(
        "SELECT username, family::text AS family, expires_at, used_at, revoked_at"
        " FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        token_hash,
    )
    return RefreshToken(**dict(row)) if row else None


async def mark_refresh_used(conn: Conn, token_hash: bytes, now: datetime) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, now
    )


async def revoke_family(conn: Conn, family: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1::uuid AND revoked_at IS NULL",
        family,
        now,
    )


async def revoke_user(conn: Conn, username: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE username = $1 AND revoked_at IS NULL",
        username,
        now,
    )


async def purge_refresh(conn: Conn, before: datetime) -> None:
    await conn.execute("DELETE FROM refresh_tokens WHERE expires_at < $1", before)
