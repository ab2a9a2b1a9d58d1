"""HTTP routes of sign-in (登录) and of the administrator's user management (用户管理).

The access token goes back in the body (the console keeps it in memory only); the refresh
token in an HttpOnly, SameSite=Strict cookie limited to ``/api/auth``, so page scripts never
see it. Every refresh rotates it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Cookie, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.clock import utcnow
from shared.auth import ROLE_ZH, Principal, Role, allow
from shared.dto import fill
from shared.errors import Conflict, Unauthenticated
from shared.service import pool
from web.config import Settings
from web.identity import handlers
from web.identity.domain import Assignment, LoginPolicy, User

router = APIRouter(prefix="/api/auth", tags=["sign-in and users"])
Pool = Annotated[asyncpg.Pool, Depends(pool)]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
Anyone = Annotated[Principal, Depends(allow(*Role))]
COOKIE = "whistle_refresh"
COOKIE_PATH = "/api/auth"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
AreaPath = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


def _settings(request: Request) -> Settings:
    return request.app.state.runtime.settings


def _token_policy(request: Request) -> handlers.TokenPolicy:
    s = _settings(request)
    return handlers.TokenPolicy(
        request.app.state.token_keys,
        timedelta(seconds=s.access_token_ttl_seconds),
        timedelta(hours=s.refresh_token_ttl_hours),
    )


class UserOut(BaseModel):
    username: str
    name: str
    role: Role
    role_label: str
    area: str
    department_id: str | None
    grids: list[str]
    disabled: bool
    locked_until: datetime | None = None

    @classmethod
    def of(cls, u: User) -> UserOut:
        a = u.assignment  # name, role, area, department_id, grids
        return fill(
            cls,
            a,
            username=u.username,
            role_label=ROLE_ZH[a.role],
            disabled=u.disabled,
            locked_until=u.locked_until,
        )


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[
        str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64)
    ]
    password: str = Field(min_length=1, max_length=256)


class SessionOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    user: UserOut


def _session_response(
    request: Request, response: Response, session: handlers.Session
) -> SessionOut:
    response.set_cookie(
        COOKIE,
        session.refresh_token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_settings(request).secure_cookies,
        max_age=int((session.refresh_expires_at - utcnow()).total_seconds()),
    )
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(
        access_token=session.access_token,
        expires_in=session.expires_in,
        user=UserOut.of(session.user),
    )


@router.post("/login", response_model=SessionOut, summary="Sign in with username and password")
async def login(body: LoginIn, request: Request, response: Response, db: Pool) -> SessionOut:
    s = _settings(request)
    policy = LoginPolicy(s.login_max_failures, timedelta(minutes=s.login_lock_minutes))
    session = await handlers.login(
        db, body.username, body.password, _token_policy(request), policy, utcnow()
    )
    return _session_response(request, response, session)


def _refresh_cookie(whistle_refresh: Annotated[str | None, Cookie()] = None) -> str:
    if not whistle_refresh:
        raise Unauthenticated(
            "未登录或登录已失效，请重新登录", "not signed in; sign in again", code="session_expired"
        )
    return whistle_refresh


RefreshCookie = Annotated[str, Depends(_refresh_cookie)]


@router.post(
    "/refresh",
    response_model=SessionOut,
    summary="A new access token for the session's refresh cookie (rotates the cookie)",
)
async def refresh(
    token: RefreshCookie, request: Request, response: Response, db: Pool
) -> SessionOut:
    session = await handlers.refresh(db, token, _token_policy(request), utcnow())
    return _session_response(request, response, session)


@router.post("/logout", status_code=204, summary="Sign out: end the session and its cookie")
async def logout(
    request: Request, db: Pool, whistle_refresh: Annotated[str | None, Cookie()] = None
) -> Response:
    if whistle_refresh:
        await handlers.logout(db, whistle_refresh, utcnow())
    response = Response(status_code=204)
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_settings(request).secure_cookies,
    )
    return response


@router.get("/me", response_model=UserOut, summary="The signed-in user as assigned now")
async def me(who: Anyone, db: Pool) -> UserOut:
    return UserOut.of(await handlers.get_user(db, who.subject))


class ConsoleConfigOut(BaseModel):
    environment: str
    public_base_url: str
    demo_users: list[dict] = Field(description="embedded mode only: the demo users to pick")
    demo_password: str | None = None


@router.get(
    "/config",
    response_model=ConsoleConfigOut,
    summary="What the sign-in page shows (demo users in the embedded mode only)",
)
async def console_config(request: Request, db: Pool) -> ConsoleConfigOut:
    s = _settings(request)
    demo = s.environment == "embedded"
    users = await handlers.list_users(db, None, None) if demo else []
    return ConsoleConfigOut(
        environment=s.environment,
        public_base_url=s.public_base_url,
        demo_users=[
            {"username": u.username, "name": u.assignment.name, "role": u.assignment.role.value}
            for u in users
            if not u.disabled
        ],
        demo_password=s.demo_password if demo else None,
    )


# --- the administrator's user management ----------------------------------------------------


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[
        str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=2, max_length=64)
    ]
    name: Text
    role: Role
    area: AreaPath
    department_id: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None
    ) = None
    grids: list[AreaPath] = Field(default_factory=list, max_length=50)
    password: str = Field(min_length=1, max_length=256)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text | None = None
    role: Role | None = None
    area: AreaPath | None = None
    department_id: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None
    ) = None
    grids: list[AreaPath] | None = Field(default=None, max_length=50)
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=256)


@router.get("/users", response_model=list[UserOut], summary="Users (admin)")
async def list_users(
    who: Admin,
    db: Pool,
    role: Role | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
) -> list[UserOut]:
    return [UserOut.of(u) for u in await handlers.list_users(db, role.value if role else None, q)]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a user (admin)")
async def create_user(body: UserIn, who: Admin, db: Pool) -> UserOut:
    assignment = Assignment(
        name=body.name,
        role=body.role,
        area=body.area,
        department_id=body.department_id,
        grids=tuple(body.grids),
    )
    return UserOut.of(
        await handlers.create_user(db, body.username, assignment, body.password, utcnow())
    )


@router.get("/users/{username}", response_model=UserOut, summary="One user (admin)")
async def get_user(username: str, who: Admin, db: Pool) -> UserOut:
    return UserOut.of(await handlers.get_user(db, username))


@router.patch(
    "/users/{username}",
    response_model=UserOut,
    summary="Change a user's role, area, department or grids; disable; reset password",
)
async def update_user(username: str, body: UserPatch, who: Admin, db: Pool) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    if username == who.subject and (
        changes.get("disabled") or changes.get("role", Role.ADMIN) is not Role.ADMIN
    ):
        # The last way back in would be gone: another administrator must do it.
        raise Conflict(
            "不能停用自己的账号或取消自己的管理员角色",
            "you cannot disable yourself or drop your own administrator role",
            code="cannot_change_self",
        )
    if "department_id" in changes and not changes["department_id"]:
        changes["department_id"] = None
    if "grids" in changes:
        changes["grids"] = tuple(changes["grids"] or ())
    return UserOut.of(await handlers.update_user(db, username, changes, utcnow()))
