"""Demo cases for ``make up``: a few cases taken through the loop over HTTP, as the demo
users would, so the departments' inboxes, the supervisors' boards, the KPIs and the live
streams show something from the first minute. Each case is reported once (an
Idempotency-Key per case): a restart finds them and adds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from shared import demo
from stack.stack import Stack


@dataclass(frozen=True)
class DemoCase:
    key: str
    reporter: str  # the grid worker of the grid
    whistler: str  # the community (or street) over it
    grid: str
    category: str
    priority: str
    description: str
    address: str
    then: str  # how far it goes: dispatched, signed_for, urged, paused, resolved


CASES = [
    DemoCase(
        "demo-case-1",
        "wangfang",
        "taoyuan",
        "YA0101-03",
        "E0101",
        "normal",
        "单元门口乱堆装修垃圾，堵塞通道",
        "桃园小区5号楼2单元",
        "dispatched",
    ),
    DemoCase(
        "demo-case-2",
        "wangfang",
        "taoyuan",
        "YA0101-04",
        "C0101",
        "urgent",
        "路灯不亮，夜间行人易摔倒",
        "桃园路与迎泽大街交叉口",
        "signed_for",
    ),
    DemoCase(
        "demo-case-3",
        "lihua",
        "donghu",
        "YA0302-04",
        "E0201",
        "urgent",
        "楼道堆放杂物堵塞消防通道",
        "东湖花园3号楼1单元",
        "urged",
    ),
    DemoCase(
        "demo-case-4",
        "wangfang",
        "taoyuan",
        "YA0101-03",
        "C0102",
        "normal",
        "人行道井盖破损，存在坠落隐患",
        "桃园小区北门",
        "paused",
    ),
    DemoCase(
        "demo-case-5",
        "lihua",
        "donghu",
        "YA0302-04",
        "E0401",
        "minor",
        "早市摊贩占道经营",
        "东湖路菜市场门口",
        "resolved",
    ),
]


def seed_demo_cases(stack: Stack, say: Callable[[str], None] = print) -> dict[str, str]:
    """Take the demo cases through the loop; the ids of the cases added, by demo key (none
    on a restart)."""
    with httpx.Client(timeout=10) as http:
        added = {}
        for case in CASES:
            case_id = _take_through(http, stack, case)
            if case_id is not None:
                added[case.key] = case_id
        if added:
            say(
                f"  Demo cases   {len(added)} cases reported, whistled and dispatched "
                "(see the inboxes, /overdue, /near-overdue and /kpi)"
            )
        return added


def _name(subject: str) -> str:
    return next(u.name for u in demo.USERS if u.subject == subject)


def _as(stack: Stack, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.mint_demo_token(subject)}"}


def _ok(resp: httpx.Response) -> dict[str, Any]:
    if resp.status_code >= 400:
        raise RuntimeError(
            f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text[:300]}"
        )
    return resp.json()


def _take_through(http: httpx.Client, stack: Stack, c: DemoCase) -> str | None:
    intake, dispatch = stack.url("intake"), stack.url("dispatch")
    tracking = stack.url("tracking")
    reported = http.post(
        f"{intake}/cases",
        headers={**_as(stack, c.reporter), "Idempotency-Key": c.key},
        json={
            "grid_code": c.grid,
            "category": c.category,
            "description": c.description,
            "priority": c.priority,
            "location": {"address": c.address},
            "reporter": _name(c.reporter),
        },
    )
    if reported.status_code == 200:  # reported before: a restart
        return None
    case_id = _ok(reported)["id"]
    _ok(http.post(f"{intake}/cases/{case_id}/whistle", json={}, headers=_as(stack, c.whistler)))
    assignment = _wait_for_assignment(http, tracking, case_id, _as(stack, "supervisor"))
    if c.then == "dispatched":
        return case_id
    department = assignment["department_id"]
    duty = _as(stack, f"{department}-duty")
    aid = assignment["assignment_id"]
    if c.then == "urged":
        _ok(
            http.post(
                f"{tracking}/cases/{case_id}/urge",
                headers=_as(stack, "supervisor"),
                json={"note": "群众反映强烈，请立即报到处置"},
            )
        )
        return case_id
    _ok(http.post(f"{dispatch}/assignments/{aid}/sign-for", json={}, headers=duty))
    if c.then == "paused":
        asked = _ok(
            http.post(
                f"{dispatch}/assignments/{aid}/pauses",
                headers=duty,
                json={"kind": "hang", "reason": "需更换整体井座，已报区财政审批资金"},
            )
        )
        _ok(
            http.post(
                f"{dispatch}/pause-requests/{asked['id']}/approve",
                json={},
                headers=_as(stack, "supervisor"),
            )
        )
    elif c.then == "resolved":
        _ok(
            http.post(
                f"{dispatch}/assignments/{aid}/resolve",
                headers=duty,
                json={"result": "已劝离摊贩，恢复道路通行"},
            )
        )
    return case_id


def _wait_for_assignment(
    http: httpx.Client, tracking: str, case_id: str, headers: dict[str, str], timeout: float = 60
) -> dict[str, Any]:
    """The case's first assignment, once dispatch routed it and tracking heard of it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = http.get(f"{tracking}/cases/{case_id}/timeline", headers=headers)
        if resp.status_code == 200 and resp.json()["assignments"]:
            return resp.json()["assignments"][0]
        time.sleep(0.3)
    raise RuntimeError(f"case {case_id} was not dispatched within {timeout:.0f} s")
