"""The demo users (shared.demo.USERS) as console accounts, all with the demo password
(``DEMO_PASSWORD``, shown on the sign-in page in the embedded mode only). Idempotent: a user an
administrator has changed since keeps the change."""

from __future__ import annotations

from datetime import UTC, datetime

from shared import db, demo
from shared.auth import Role
from web.config import Settings
from web.identity.domain import Assignment
from web.identity.handlers import upsert_demo_user
from web.identity.passwords import hash_password


def demo_assignment(user: demo.DemoUser) -> Assignment:
    role = Role(user.role)
    area = user.area
    if role is Role.GRID_WORKER and user.grids:
        # The community above the grids: the grids are what the worker walks.
        area = user.grids[0].rsplit("/", 1)[0]
    return Assignment(
        name=user.name,
        role=role,
        area=area,
        department_id=user.department_id,
        grids=tuple(user.grids) or ((user.area,) if role is Role.GRID_WORKER else ()),
    )


async def seed_demo(settings: Settings) -> None:
    # One hash per user (each with its own salt), as for any other account.
    hashes = [await hash_password(settings.demo_password) for _ in demo.USERS]
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        now = datetime.now(UTC)
        async with conn.transaction():
            for user, hashed in zip(demo.USERS, hashes, strict=True):
                await upsert_demo_user(conn, user.subject, demo_assignment(user), hashed, now)
    finally:
        await conn.close()
    print(f"web: {len(demo.USERS)} demo users (password from DEMO_PASSWORD)")
