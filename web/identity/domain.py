"""Pure rules of identity: what a user is, what a valid assignment is, what a token carries.

A user's scope is data the administrator assigns — role, the jurisdiction node (area path),
the department for department staff, the grids for grid workers (网格员) — and the access
token minted at sign-in carries it as it stands then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.auth import Principal, Role
from shared.contract import areas
from shared.errors import Invalid, Unauthenticated

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
AREA_PATH = re.compile(r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,7}$")
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Assignment:
    """What the administrator decides about a user (分配的角色、辖区、部门、网格)."""

    name: str
    role: Role
    area: str
    department_id: str | None = None
    grids: tuple[str, ...] = ()


@dataclass(frozen=True)
class User:
    username: str
    assignment: Assignment
    password_hash: str
    disabled: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def principal(self) -> Principal:
        a = self.assignment
        return Principal(
            subject=self.username,
            name=a.name,
            role=a.role,
            area=a.area,
            department_id=a.department_id,
            grids=a.grids,
        )


@dataclass(frozen=True)
class RefreshToken:
    username: str
    family: str
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass
class LoginPolicy:
    max_failures: int = 5
    lock: timedelta = field(default_factory=lambda: timedelta(minutes=15))


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise Invalid(
            "用户名只能由小写字母、数字和 . _ - 组成（2–64 位，字母或数字开头）",
            "a username is 2–64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            code="invalid_username",
        )
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD or not password.strip():
        raise Invalid(
            f"密码至少 {MIN_PASSWORD} 位",
            f"a password has at least {MIN_PASSWORD} characters",
            code="weak_password",
        )
    return password


def check_assignment(a: Assignment) -> Assignment:
    """A consistent scope: department staff name their department, grid workers hold grids
    inside their area; every path is a well-formed area path."""
    if not a.name.strip():
        raise Invalid("姓名不能为空", "the name must not be empty", code="invalid_name")
    for path in (a.area, *a.grids):
        if not AREA_PATH.match(path):
            raise Invalid(
                f"辖区路径格式不正确：{path}（如 YA/YA01/YA0101）",
                f"malformed area path: {path} (e.g. YA/YA01/YA0101)",
                code="invalid_area",
            )
    if a.role is Role.DEPARTMENT and not a.department_id:
        raise Invalid(
            "职能部门用户须指定所属部门",
            "a department user needs a department",
            code="department_required",
        )
    if a.role is not Role.DEPARTMENT and a.department_id:
        raise Invalid(
            "只有职能部门用户才能指定部门",
            "only department users have a department",
            code="department_not_allowed",
        )
    if a.role is Role.GRID_WORKER:
        if not a.grids:
            raise Invalid(
                "网格员须至少分配一个网格",
                "a grid worker needs at least one grid",
                code="grids_required",
            )
        outside = [g for g in a.grids if not areas.within(g, a.area)]
        if outside:
            raise Invalid(
                f"网格不在该用户的辖区 {a.area} 内：{'、'.join(outside)}",
                f"grids outside the user's area {a.area}: {', '.join(outside)}",
                code="grid_outside_area",
            )
    elif a.grids:
        raise Invalid(
            "只有网格员才能分配网格", "only grid workers have grids", code="grids_not_allowed"
        )
    return a


def login_refused(user: User | None, now: datetime) -> Unauthenticated | None:
    """Why a sign-in may not go ahead before the password is even looked at."""
    if user is not None and user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        return Unauthenticated(
            f"密码错误次数过多，请 {minutes} 分钟后再试",
            f"too many wrong passwords; try again in {minutes} min",
            code="login_locked",
        )
    return None


def bad_credentials() -> Unauthenticated:
    # One answer for an unknown user and a wrong password: the form does not tell which.
    return Unauthenticated("用户名或密码错误", "wrong username or password", code="bad_credentials")


def disabled_user() -> Unauthenticated:
    return Unauthenticated(
        "该账号已停用，请联系系统管理员", "this account is disabled", code="user_disabled"
    )


def after_failure(user: User, policy: LoginPolicy, now: datetime) -> tuple[int, datetime | None]:
    """The failure count and lock after one more wrong password."""
    failures = user.failed_logins + 1
    if failures >= policy.max_failures:
        return 0, now + policy.lock
    return failures, None


def refresh_refused(token: RefreshToken | None, now: datetime) -> Unauthenticated | None:
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return Unauthenticated(
            "登录已失效，请重新登录", "the session has ended; sign in again", code="session_expired"
        )
    return None
