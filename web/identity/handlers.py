"""Use cases of identity: sign in, refresh, sign out, and the administrator's user list.
One transaction each."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg
import structlog

from shared.auth import TokenKeys, mint
from shared.errors import Conflict, NotFound
from web.identity import domain, repository
from web.identity.domain import Assignment, LoginPolicy, User
from web.identity.passwords import hash_password, verify_password
from shared.db import Conn

log = structlog.get_logger()


@dataclass(frozen=True)
class TokenPolicy:
    keys: TokenKeys
    access_ttl: timedelta
    refresh_ttl: timedelta


@dataclass(frozen=True)
class Session:
    user: User
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_at: datetime


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def _open_session(
    conn: Conn,
    user: User,
    tokens: TokenPolicy,
    now: datetime,
    family: uuid.UUID | None = None,
) -> Session:
    refresh = secrets.token_urlsafe(32)
    expires_at = now + tokens.refresh_ttl
    await repository.insert_refresh(
        conn, _digest(refresh), user.username, family or uuid.uuid4(), now, expires_at
    )
    ttl = int(tokens.access_ttl.total_seconds())
    access = mint(tokens.keys, user.principal, ttl_seconds=ttl, now=now.timestamp())
    return Session(user, access, ttl, refresh, expires_at)


async def login(
    pool: asyncpg.Pool,
    username: str,
    password: str,
    tokens: TokenPolicy,
    policy: LoginPolicy,
    now: datetime,
) -> Session:
    async with pool.acquire() as conn, conn.transaction():
        user = await repository.get_user(conn, username, lock=True)
        refused = domain.login_refused(user, now)
        if refused:
            raise refused
        ok = await verify_password(user.password_hash if user else None, password)
        if user is None:
            log.info("login_failed", username=username, reason="unknown_user")
            raise domain.bad_credentials()
        if not ok:
            failures, locked = domain.after_failure(user, policy, now)
            await repository.record_login(conn, username, failures, locked)
            log.info(
                "login_failed",
                username=username,
                reason="wrong_password",
                locked=locked is not None,
            )
            # The failure is counted even though the request fails: commit it.
            return_error = domain.bad_credentials()
        elif user.disabled:
            raise domain.disabled_user()
        else:
            await repository.record_login(conn, username, 0, None)
            log.info("login_succeeded", username=username, role=user.assignment.role.value)
            return await _open_session(conn, user, tokens, now)
    raise return_error


async def refresh(pool: asyncpg.Pool, token: str, tokens: TokenPolicy, now: datetime) -> Session:
    digest = _digest(token)
    async with pool.acquire() as conn, conn.transaction():
        stored = await repository.get_refresh(conn, digest)
        refused = domain.refresh_refused(stored, now)
        if refused is None and stored is not None and stored.used_at is not None:
            # Used before: someone replays a rotated token. End the whole family.
            await repository.revoke_family(conn, stored.family, now)
            log.warning("refresh_token_reused", username=stored.username, family=stored.family)
            refused = domain.refresh_refused(None, now)
        if refused is None and stored is not None:
            user = await repository.get_user(conn, stored.username)
            if user is None or user.disabled:
                await repository.revoke_user(conn, stored.username, now)
                refused = domain.disabled_user()
            else:
                await repository.mark_refresh_used(conn, digest, now)
                return await _open_session(conn, user, tokens, now, uuid.UUID(stored.family))
    assert refused is not None
    raise refused


async def logout(pool: asyncpg.Pool, token: str, now: datetime) -> None:
    async with pool.acquire() as conn, conn.transaction():
        stored = await repository.get_refresh(conn, _digest(token))
        if stored is not None:
            await repository.revoke_family(conn, stored.family, now)
            log.info("logout", username=stored.username)


async def get_user(pool: asyncpg.Pool, username: str) -> User:
    async with pool.acquire() as conn:
        user = await repository.get_user(conn, username)
    if user is None:
        raise NotFound(f"用户 {username} 不存在", f"no user '{username}'", code="user_not_found")
    return user


async def list_users(pool: asyncpg.Pool, role: str | None, q: str | None) -> list[User]:
    async with pool.acquire() as conn:
        return await repository.list_users(conn, role, q)


async def create_user(
    pool: asyncpg.Pool, username: str, assignment: Assignment, password: str, now: datetime
) -> User:
    domain.check_username(username)
    domain.check_assignment(assignment)
    hashed = await hash_password(domain.check_password(password))
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.insert_user(conn, username, assignment, hashed, now):
            raise Conflict(
                f"用户名 {username} 已被使用",
                f"the username '{username}' is taken",
                code="username_taken",
            )
        created = await repository.get_user(conn, username)
    assert created is not None
    log.info("user_created", username=username, role=assignment.role.value)
    return created


async def update_user(pool: asyncpg.Pool, username: str, changes: dict, now: datetime) -> User:
    """Change a user's assignment, enable or disable it, or set a new password. Disabling or
    a new password ends the user's sessions (their refresh tokens)."""
    password = changes.pop("password", None)
    hashed = await hash_password(domain.check_password(password)) if password else None
    disabled = changes.pop("disabled", None)
    async with pool.acquire() as conn, conn.transaction():
        user = await repository.get_user(conn, username, lock=True)
        if user is None:
            raise NotFound(
                f"用户 {username} 不存在", f"no user '{username}'", code="user_not_found"
            )
        assignment = domain.check_assignment(replace(user.assignment, **changes))
        now_disabled = user.disabled if disabled is None else disabled
        await repository.update_user(
            conn, username, assignment, now_disabled, hashed or user.password_hash, now
        )
        if hashed or (now_disabled and not user.disabled):
            await repository.revoke_user(conn, username, now)
        updated = await repository.get_user(conn, username)
    assert updated is not None
    log.info(
        "user_updated",
        username=username,
        fields=sorted(changes),
        disabled=now_disabled,
        password_changed=hashed is not None,
    )
    return updated


async def upsert_demo_user(
    conn: Conn,
    username: str,
    assignment: Assignment,
    password_hash: str,
    now: datetime,
) -> None:
    if not await repository.insert_user(conn, username, assignment, password_hash, now):
        return  # keep what an administrator changed since
