"""The authorisation matrix (issue 3): every route of every service — discovered from the
apps, so a new route without a rule or without a row here fails — × every role × inside
and outside the holder's jurisdiction. Denials must be 401/403 and change nothing.

The four services run in-process on real PostgreSQL and the real broker, with one real case
taken through the loop (reported, whistled, dispatched to 城管 cg) before the walk.
"""

from __future__ import annotations

import io
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from fastapi.routing import APIRoute
from PIL import Image

from services.intake import demo as jurisdiction_demo
from services.intake.domain import hotspots as hotspot_rules
from services.tracking import demo as sla_demo
from shared.auth import Role, Rule
from shared.clock import BEIJING, utcnow
from tests.four_services import four_services
from tests.helpers import bearer, eventually, settled, snapshot

GRID = "YA/YA01/YA0101/YA0101-03"

# Who acts inside and outside the case's jurisdiction (the case is in GRID, assigned to cg).
INSIDE: dict[Role, dict[str, Any]] = {
    Role.GRID_WORKER: {"area": GRID, "grids": (GRID,)},
    Role.COMMUNITY: {"area": "YA/YA01/YA0101"},
    Role.STREET: {"area": "YA/YA01"},
    Role.DISTRICT: {"area": "YA"},
    Role.DEPARTMENT: {"area": "YA", "department_id": "cg"},
    Role.SUPERVISOR: {"area": "YA/YA01"},
    Role.ADMIN: {"area": "YA"},
}
OUTSIDE: dict[Role, dict[str, Any]] = {
    Role.GRID_WORKER: {"area": "YA/YA02/YA0201/YA0201-01", "grids": ("YA/YA02/YA0201/YA0201-01",)},
    Role.COMMUNITY: {"area": "YA/YA02/YA0201"},
    Role.STREET: {"area": "YA/YA02"},
    Role.DISTRICT: {"area": "ZZ"},
    Role.DEPARTMENT: {"area": "YA", "department_id": "xf"},
    Role.SUPERVISOR: {"area": "YA/YA03"},
    Role.ADMIN: {"area": "ZZ"},
}

ANY = "any"  # allowed wherever the holder acts
SCOPED = "scoped"  # allowed inside, 403 outside
FILTERED = "filtered"  # 200 both; outside never sees the case
AREA = (Role.COMMUNITY, Role.STREET, Role.DISTRICT)
EVERYONE = tuple(Role)


@dataclass(frozen=True)
class Case:
    """How to call one route, and who may."""

    call: Callable[[dict, Role], tuple[str, dict]]  # (ctx, role) -> (path, request kwargs)
    allowed: dict[Role, str]
    must_see_case: bool = False  # FILTERED: the inside holder's answer includes the case
    anonymous: bool = False  # no credential at all is a resident (群众上报): allowed


def each(roles: tuple[Role, ...], how: str) -> dict[Role, str]:
    return dict.fromkeys(roles, how)


def fixed(path: str, **kwargs: Any) -> Callable[[dict, Role], tuple[str, dict]]:
    return lambda ctx, role: (path.format(**ctx), kwargs)


def inbox_of(suffix: str = "", method_kwargs: dict | None = None):
    def call(ctx: dict, role: Role) -> tuple[str, dict]:
        recipient = ctx["inbox_for"][role]
        path = f"/recipients/{recipient}/inbox{suffix.format(**ctx)}"
        return path, dict(method_kwargs or {})

    return call


REPORT = {
    "grid_code": "YA0101-03",
    "category": "E0101",
    "description": "楼道堆放杂物",
    "priority": "normal",
}


def _photo() -> bytes:  # a real 8×8 PNG for the photo routes
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


PHOTO = {"file": ("photo.png", _photo(), "image/png")}


def photo_upload(ctx: dict, role: Role) -> tuple[str, dict]:
    if role is Role.DEPARTMENT:
        return f"/cases/{ctx['case_id']}/photos", {"params": {"kind": "after"}, "files": PHOTO}
    return f"/cases/{ctx['other_case_id']}/photos", {"params": {"kind": "before"}, "files": PHOTO}


def hotspot(action: str, **kwargs: Any) -> Callable[[dict, Role], tuple[str, dict]]:
    """The case's grid's E0101 hotspot over the default window, as listed now."""

    def call(ctx: dict, role: Role) -> tuple[str, dict]:
        start = hotspot_rules.window_start(utcnow(), hotspot_rules.DEFAULT_WEEKS)
        hotspot_id = f"YA0101-03.E0101.{start.astimezone(BEIJING):%Y%m%d%H%M%S}"
        return f"/hotspots/{hotspot_id}/{action}", dict(kwargs)

    return call


PUBLIC_PATHS = {"/livez", "/healthz", "/readyz", "/metrics", "/asyncapi.json", "/asyncapi"}

MATRIX: dict[tuple[str, str, str], Case] = {
    # intake
    ("intake", "POST", "/cases"): Case(
        fixed("/cases", json=REPORT), each((Role.GRID_WORKER, *AREA), SCOPED)
    ),
    ("intake", "GET", "/cases"): Case(
        fixed("/cases"),
        each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR), FILTERED),
        must_see_case=True,
    ),
    ("intake", "GET", "/cases/{case_id}"): Case(
        fixed("/cases/{case_id}"), each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR), SCOPED)
    ),
    ("intake", "POST", "/cases/{case_id}/whistle"): Case(
        fixed("/cases/{other_case_id}/whistle", json={}), each(AREA, SCOPED)
    ),
    ("intake", "POST", "/cases/{case_id}/close"): Case(
        fixed("/cases/{case_id}/close", json={}), each((Role.GRID_WORKER, *AREA), SCOPED)
    ),
    ("intake", "GET", "/areas"): Case(fixed("/areas"), each(EVERYONE, ANY)),
    # intake jurisdiction (admin-only reference writes; reads for everyone; workers scoped)
    ("intake", "GET", "/areas/{code}"): Case(fixed("/areas/YA0101-03"), each(EVERYONE, ANY)),
    ("intake", "GET", "/areas/locate"): Case(
        fixed("/areas/locate", params={"lat": 37.8865, "lon": 112.536}), each(EVERYONE, ANY)
    ),
    ("intake", "PUT", "/areas/{code}"): Case(
        fixed(
            "/areas/YA0404-90",
            json={"name": "和平社区第90网格", "level": "grid", "parent_code": "YA0404"},
        ),
        each((Role.ADMIN,), ANY),
    ),
    ("intake", "PUT", "/areas/{code}/boundary"): Case(
        fixed("/areas/YA0404-08/boundary", json=jurisdiction_demo.boundary("YA0404-08")),
        each((Role.ADMIN,), ANY),
    ),
    ("intake", "POST", "/areas/import"): Case(
        fixed(
            "/areas/import",
            json={
                "areas": [
                    {
                        "code": "YA0404-91",
                        "name": "和平社区第91网格",
                        "level": "grid",
                        "parent_code": "YA0404",
                    }
                ]
            },
        ),
        each((Role.ADMIN,), ANY),
    ),
    ("intake", "PUT", "/grids/{code}/workers"): Case(
        fixed("/grids/YA0101-03/workers", json={"subjects": ["wangfang"]}), each((Role.ADMIN,), ANY)
    ),
    ("intake", "GET", "/grids/{code}/workers"): Case(
        fixed("/grids/YA0101-03/workers"),
        {Role.ADMIN: ANY, **each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR), SCOPED)},
    ),
    # intake casework (the case is with the department: allowed callers meet 409, not 403)
    ("intake", "POST", "/cases/{case_id}/fix-on-spot"): Case(
        fixed("/cases/{case_id}/fix-on-spot", json={"note": "已现场清理"}),
        each((Role.GRID_WORKER, *AREA), SCOPED),
    ),
    ("intake", "POST", "/cases/{case_id}/rework"): Case(
        fixed("/cases/{case_id}/rework", json={"reason": "未清理干净"}),
        each((Role.GRID_WORKER, *AREA), SCOPED),
    ),
    ("intake", "POST", "/cases/{case_id}/reopen"): Case(
        fixed("/cases/{case_id}/reopen", json={"reason": "问题复发"}),
        each((Role.GRID_WORKER, *AREA), SCOPED),
    ),
    ("intake", "POST", "/cases/{case_id}/rating"): Case(
        fixed("/cases/{case_id}/rating", json={"score": 5}), each((Role.GRID_WORKER, *AREA), SCOPED)
    ),
    ("intake", "POST", "/cases/{case_id}/rating-link"): Case(
        fixed("/cases/{case_id}/rating-link"), each((Role.GRID_WORKER, *AREA), SCOPED)
    ),
    ("intake", "POST", "/cases/{case_id}/merge"): Case(
        lambda ctx, role: (
            f"/cases/{ctx['case_id']}/merge",
            {"json": {"primary_case_id": ctx["other_case_id"]}},
        ),
        each(AREA, SCOPED),
    ),
    ("intake", "GET", "/cases/{case_id}/reporters"): Case(
        fixed("/cases/{case_id}/reporters"),
        each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR), SCOPED),
    ),
    ("intake", "GET", "/cases/{case_id}/duplicates"): Case(
        fixed("/cases/{case_id}/duplicates"),
        each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR), SCOPED),
    ),
    # intake photos: a before-photo to the case still with the community; departments (not
    # allowed before-photos at all) an after-photo to the case dispatched to cg — inside is
    # cg (201, or 409 once an earlier row closed the case), outside is xf, not assigned: 403.
    # Departments read the photos of the cases dispatched to them.
    ("intake", "POST", "/cases/{case_id}/photos"): Case(
        photo_upload, each((Role.GRID_WORKER, *AREA, Role.DEPARTMENT), SCOPED)
    ),
    ("intake", "GET", "/cases/{case_id}/photos"): Case(
        fixed("/cases/{case_id}/photos"),
        each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR, Role.DEPARTMENT), SCOPED),
    ),
    ("intake", "GET", "/photos/{photo_id}"): Case(
        fixed("/photos/{photo_id}"),
        each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR, Role.DEPARTMENT), SCOPED),
    ),
    # intake 未诉先办 hotspots: an id names grid.category.period start; the case's grid has
    # two E0101 cases, so inside callers accept (201, then 200) or meet 409 once decided
    ("intake", "GET", "/hotspots"): Case(
        fixed("/hotspots"), each((*AREA, Role.SUPERVISOR), FILTERED)
    ),
    ("intake", "POST", "/hotspots/{hotspot_id}/accept"): Case(
        hotspot("accept"), each(AREA, SCOPED)
    ),
    ("intake", "POST", "/hotspots/{hotspot_id}/dismiss"): Case(
        hotspot("dismiss", json={"reason": "seasonal"}), each(AREA, SCOPED)
    ),
    # intake Open311 GeoReport v2 (api_key or bearer; the answers name case numbers, not ids)
    **{
        key: case
        for fmt in ("json", "xml")
        for key, case in {
            ("intake", "POST", f"/open311/v2/requests.{fmt}"): Case(
                fixed(
                    f"/open311/v2/requests.{fmt}",
                    data={
                        "service_code": "E0101",
                        "address_string": "桃园小区3号楼",
                        "description": "楼道堆放杂物",
                        "attribute[grid_code]": "YA0101-03",
                    },
                ),
                each((Role.GRID_WORKER, *AREA), SCOPED),
                anonymous=True,
            ),
            ("intake", "GET", f"/open311/v2/requests.{fmt}"): Case(
                fixed(f"/open311/v2/requests.{fmt}"),
                each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR), FILTERED),
            ),
            ("intake", "GET", f"/open311/v2/requests/{{service_request_id}}.{fmt}"): Case(
                fixed(f"/open311/v2/requests/{{case_id}}.{fmt}"),
                each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR), SCOPED),
            ),
            ("intake", "GET", f"/open311/v2/tokens/{{token}}.{fmt}"): Case(
                fixed(f"/open311/v2/tokens/{{case_id}}.{fmt}"),
                each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR), SCOPED),
            ),
        }.items()
    },
    # intake: 12345 hotline tickets and residents' reports (issue 16). The hotline ticket is
    # the same for every caller: imported once inside, found again (403 outside its scope).
    ("intake", "POST", "/cases/import/hotline"): Case(
        fixed(
            "/cases/import/hotline",
            json={
                "ticket_no": "MATRIX-1",
                "category": "E0101",
                "description": "市民来电：楼道堆放杂物",
                "grid_code": "YA0101-03",
                "received_at": "2026-12-01T09:30:00+08:00",
            },
        ),
        each(AREA, SCOPED),
    ),
    ("intake", "GET", "/resident-reports"): Case(
        fixed("/resident-reports"), each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR), FILTERED)
    ),
    # the case is not a resident's report waiting: allowed callers meet 409, not 403
    ("intake", "POST", "/resident-reports/{case_id}/accept"): Case(
        fixed("/resident-reports/{case_id}/accept", json={}),
        each((Role.GRID_WORKER, *AREA), SCOPED),
    ),
    ("intake", "POST", "/resident-reports/{case_id}/dismiss"): Case(
        fixed("/resident-reports/{case_id}/dismiss", json={"reason": "not_found"}),
        each((Role.GRID_WORKER, *AREA), SCOPED),
    ),
    # dispatch
    ("dispatch", "GET", "/departments"): Case(fixed("/departments"), each(EVERYONE, ANY)),
    ("dispatch", "GET", "/departments/{department_id}"): Case(
        fixed("/departments/cg"), each(EVERYONE, ANY)
    ),
    ("dispatch", "PUT", "/departments/{department_id}"): Case(
        fixed(
            "/departments/matrix-dept",
            json={"name": "矩阵测试部门", "kind": "volunteer", "areas": ["YA/YA02"]},
        ),
        each((Role.ADMIN,), ANY),
    ),
    ("dispatch", "GET", "/routing-rules"): Case(
        fixed("/routing-rules"), each((Role.ADMIN, Role.DISTRICT, Role.SUPERVISOR), ANY)
    ),
    ("dispatch", "POST", "/routing-rules"): Case(
        fixed(
            "/routing-rules",
            json={"category_code": "E0102", "area_prefix": "YA/YA04", "department_id": "cg"},
        ),
        each((Role.ADMIN,), ANY),
    ),
    ("dispatch", "GET", "/departments/{department_id}/assignments"): Case(
        fixed("/departments/cg/assignments"),
        {Role.DEPARTMENT: SCOPED, **each((*AREA, Role.SUPERVISOR), FILTERED)},
        must_see_case=True,
    ),
    ("dispatch", "GET", "/assignments/{assignment_id}"): Case(
        fixed("/assignments/{assignment_id}"),
        each((Role.DEPARTMENT, *AREA, Role.SUPERVISOR), SCOPED),
    ),
    ("dispatch", "POST", "/assignments/{assignment_id}/sign-for"): Case(
        fixed("/assignments/{assignment_id}/sign-for", json={}), each((Role.DEPARTMENT,), SCOPED)
    ),
    ("dispatch", "POST", "/assignments/{assignment_id}/resolve"): Case(
        fixed("/assignments/{assignment_id}/resolve", json={"result": "已处理"}),
        each((Role.DEPARTMENT,), SCOPED),
    ),
    # 退单 and 转办 with a blank reason: the department check comes first (403 outside), the
    # inside caller gets 422 — the shared assignment is not moved on under the later rows.
    ("dispatch", "POST", "/assignments/{assignment_id}/reject"): Case(
        fixed("/assignments/{assignment_id}/reject", json={"reason": " "}),
        each((Role.DEPARTMENT,), SCOPED),
    ),
    ("dispatch", "POST", "/assignments/{assignment_id}/transfer"): Case(
        fixed(
            "/assignments/{assignment_id}/transfer", json={"to_department_id": "zj", "reason": " "}
        ),
        each((Role.DEPARTMENT,), SCOPED),
    ),
    ("dispatch", "POST", "/assignments/{assignment_id}/progress"): Case(
        fixed("/assignments/{assignment_id}/progress", json={"note": "已到现场"}),
        each((Role.DEPARTMENT,), SCOPED),
    ),
    ("dispatch", "GET", "/manual-dispatch"): Case(
        fixed("/manual-dispatch"), each((*AREA, Role.SUPERVISOR), FILTERED)
    ),
    # The case is not waiting: 404 for every allowed caller (the area check needs the
    # waiting row; tests/component/test_dispatch_reject_transfer.py checks it on a waiting case).
    ("dispatch", "POST", "/manual-dispatch/{case_id}"): Case(
        fixed("/manual-dispatch/{case_id}", json={"department_id": "zj"}), each(AREA, ANY)
    ),
    ("dispatch", "DELETE", "/routing-rules/{rule_id}"): Case(
        fixed("/routing-rules/999999"), each((Role.ADMIN,), ANY)
    ),
    ("dispatch", "GET", "/liaison-units"): Case(
        fixed("/liaison-units"), each((Role.ADMIN, Role.DISTRICT, Role.SUPERVISOR), ANY)
    ),
    ("dispatch", "PUT", "/liaison-units/{area_prefix:path}"): Case(
        fixed("/liaison-units/YA/YA04/YA0404", json={"department_ids": ["gd"]}),
        each((Role.ADMIN,), ANY),
    ),
    # 延期: the assignment is not signed for, so the inside department meets 409.
    ("dispatch", "POST", "/assignments/{assignment_id}/extensions"): Case(
        fixed("/assignments/{assignment_id}/extensions", json={"days": 2, "reason": "待材料"}),
        each((Role.DEPARTMENT,), SCOPED),
    ),
    ("dispatch", "GET", "/extension-requests"): Case(
        fixed("/extension-requests"), each((Role.DEPARTMENT, *AREA, Role.SUPERVISOR), FILTERED)
    ),
    ("dispatch", "GET", "/extension-requests/{request_id}"): Case(
        fixed("/extension-requests/{extension_id}"),
        each((Role.DEPARTMENT, *AREA, Role.SUPERVISOR), SCOPED),
    ),
    ("dispatch", "POST", "/extension-requests/{request_id}/approve"): Case(
        fixed("/extension-requests/{extension_id}/approve", json={}),
        each((Role.SUPERVISOR,), SCOPED),
    ),
    ("dispatch", "POST", "/extension-requests/{request_id}/refuse"): Case(
        fixed("/extension-requests/{extension_id}/refuse", json={"comment": "材料不全"}),
        each((Role.SUPERVISOR,), SCOPED),
    ),
    # 挂账/缓办: the assignment is not signed for (the inside department meets 409) nor paused
    # (resuming meets 409); no pause request exists, so reading or deciding one is 404 for
    # every allowed caller (tests/component/test_dispatch_pauses.py checks the area scope).
    ("dispatch", "POST", "/assignments/{assignment_id}/pauses"): Case(
        fixed("/assignments/{assignment_id}/pauses", json={"kind": "hang", "reason": "待资金"}),
        each((Role.DEPARTMENT,), SCOPED),
    ),
    ("dispatch", "POST", "/assignments/{assignment_id}/resume"): Case(
        fixed("/assignments/{assignment_id}/resume", json={}),
        each((Role.DEPARTMENT, Role.SUPERVISOR), SCOPED),
    ),
    ("dispatch", "GET", "/pause-requests"): Case(
        fixed("/pause-requests"), each((Role.DEPARTMENT, *AREA, Role.SUPERVISOR), FILTERED)
    ),
    ("dispatch", "GET", "/pause-requests/{request_id}"): Case(
        fixed(f"/pause-requests/{uuid.uuid4()}"),
        each((Role.DEPARTMENT, *AREA, Role.SUPERVISOR), ANY),
    ),
    ("dispatch", "POST", "/pause-requests/{request_id}/approve"): Case(
        fixed(f"/pause-requests/{uuid.uuid4()}/approve", json={}), each((Role.SUPERVISOR,), ANY)
    ),
    ("dispatch", "POST", "/pause-requests/{request_id}/refuse"): Case(
        fixed(f"/pause-requests/{uuid.uuid4()}/refuse", json={"comment": "理由不充分"}),
        each((Role.SUPERVISOR,), ANY),
    ),
    # tracking
    ("tracking", "GET", "/cases/{case_id}/timeline"): Case(
        fixed("/cases/{case_id}/timeline"),
        each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR, Role.DEPARTMENT), SCOPED),
    ),
    ("tracking", "GET", "/overdue"): Case(
        fixed("/overdue"), each((*AREA, Role.SUPERVISOR, Role.DEPARTMENT), FILTERED)
    ),
    ("tracking", "GET", "/near-overdue"): Case(
        fixed("/near-overdue"), each((*AREA, Role.SUPERVISOR, Role.DEPARTMENT), FILTERED)
    ),
    # the boards' live stream, replayed from the start and ended once caught up: the case's
    # clocks starting are in it for readers of its area and department only
    ("tracking", "GET", "/boards/stream"): Case(
        fixed("/boards/stream", params={"last_event_id": "0-0", "follow": "false"}),
        each((*AREA, Role.SUPERVISOR, Role.DEPARTMENT), FILTERED),
        must_see_case=True,
    ),
    ("tracking", "POST", "/cases/{case_id}/urge"): Case(
        fixed("/cases/{case_id}/urge", json={"note": "请尽快报到"}),
        each((*AREA, Role.SUPERVISOR), SCOPED),
    ),
    # tracking SLA reference data: everyone reads; admin replaces the calendar and adds
    # policy versions (tracking is not seeded here: reads may be 404, an addition 409/422)
    ("tracking", "GET", "/sla/calendar"): Case(fixed("/sla/calendar"), each(EVERYONE, ANY)),
    ("tracking", "PUT", "/sla/calendar"): Case(
        fixed("/sla/calendar", json=sla_demo.CALENDAR_DATA), each((Role.ADMIN,), ANY)
    ),
    ("tracking", "GET", "/sla/policy-versions"): Case(
        fixed("/sla/policy-versions"), each(EVERYONE, ANY)
    ),
    ("tracking", "GET", "/sla/policy-versions/{version}"): Case(
        fixed("/sla/policy-versions/1"), each(EVERYONE, ANY)
    ),
    ("tracking", "POST", "/sla/policy-versions"): Case(
        fixed(
            "/sla/policy-versions",
            json={
                **sla_demo.VERSION_1,
                "version": 7,
                "effective_from": "2099-01-01T00:00:00+08:00",
            },
        ),
        each((Role.ADMIN,), ANY),
    ),
    # tracking KPIs (figures filtered to the caller's subtree or department), the ranking
    # (area roles and supervisors), the red/black list's thresholds (everyone reads, admin
    # replaces) and a case's history as a file (the timeline's readers)
    ("tracking", "GET", "/kpi/departments"): Case(
        fixed("/kpi/departments", params={"from": "2026-01-01", "to": "2026-12-31"}),
        each((*AREA, Role.SUPERVISOR, Role.DEPARTMENT), FILTERED),
    ),
    ("tracking", "GET", "/kpi/areas"): Case(
        fixed("/kpi/areas", params={"from": "2026-01-01", "to": "2026-12-31"}),
        each((*AREA, Role.SUPERVISOR, Role.DEPARTMENT), FILTERED),
    ),
    ("tracking", "GET", "/kpi/ranking"): Case(
        fixed("/kpi/ranking", params={"from": "2026-01-01", "to": "2026-12-31"}),
        each((*AREA, Role.SUPERVISOR), FILTERED),
    ),
    # the SLA backtest (area roles and supervisors, over their own subtree's assignments)
    ("tracking", "POST", "/sla/backtest"): Case(
        fixed("/sla/backtest", json={"version": 1, "from": "2026-01-01", "to": "2026-12-31"}),
        each((*AREA, Role.SUPERVISOR), FILTERED),
    ),
    # issue 16: the seeds' counts (area roles and supervisors) and the integrity checks
    # (考核: street, district, supervisors), filtered to the caller's subtree
    ("tracking", "GET", "/kpi/grid-work"): Case(
        fixed("/kpi/grid-work", params={"from": "2026-01-01", "to": "2026-12-31"}),
        each((*AREA, Role.SUPERVISOR), FILTERED),
    ),
    ("tracking", "GET", "/kpi/sources"): Case(
        fixed("/kpi/sources", params={"from": "2026-01-01", "to": "2026-12-31"}),
        each((*AREA, Role.SUPERVISOR), FILTERED),
    ),
    ("tracking", "GET", "/kpi/integrity"): Case(
        fixed("/kpi/integrity", params={"from": "2026-01-01", "to": "2026-12-31"}),
        each((Role.STREET, Role.DISTRICT, Role.SUPERVISOR), FILTERED),
    ),
    ("tracking", "GET", "/kpi/thresholds"): Case(fixed("/kpi/thresholds"), each(EVERYONE, ANY)),
    ("tracking", "PUT", "/kpi/thresholds"): Case(
        fixed("/kpi/thresholds", json={"min_received": 3, "black": [["rejections", ">=", 3]]}),
        each((Role.ADMIN,), ANY),
    ),
    ("tracking", "GET", "/cases/{case_id}/history"): Case(
        fixed("/cases/{case_id}/history", params={"format": "csv"}),
        each((Role.GRID_WORKER, *AREA, Role.SUPERVISOR, Role.DEPARTMENT), SCOPED),
    ),
    # notify
    ("notify", "POST", "/recipients"): Case(
        fixed(
            "/recipients",
            json={
                "id": "new-desk",
                "name": "新值班室",
                "kind": "department",
                "department_id": "cg",
            },
        ),
        each((Role.ADMIN,), ANY),
    ),
    ("notify", "PUT", "/recipients/{recipient_id}"): Case(
        fixed(
            "/recipients/duty-gd",
            json={"name": "榆安供电公司值班室", "kind": "department", "department_id": "gd"},
        ),
        each((Role.ADMIN,), ANY),
    ),
    ("notify", "GET", "/recipients"): Case(fixed("/recipients"), each((Role.ADMIN,), ANY)),
    ("notify", "PUT", "/recipients/{recipient_id}/preferences"): Case(
        fixed("/recipients/duty-gd/preferences", json={"locale": "zh-CN", "channels": []}),
        each((Role.ADMIN,), ANY),
    ),
    ("notify", "GET", "/recipients/{recipient_id}/preferences"): Case(
        fixed("/recipients/duty-gd/preferences"), each((Role.ADMIN,), ANY)
    ),
    ("notify", "GET", "/recipients/{recipient_id}/inbox"): Case(
        inbox_of(), each((Role.DEPARTMENT, *AREA, Role.SUPERVISOR), SCOPED)
    ),
    ("notify", "POST", "/recipients/{recipient_id}/inbox/{message_id}/read"): Case(
        inbox_of("/{message_id}/read"), each((Role.DEPARTMENT, *AREA, Role.SUPERVISOR), SCOPED)
    ),
    # the inbox's live stream: its readers; follow=false ends it once caught up
    ("notify", "GET", "/recipients/{recipient_id}/stream"): Case(
        lambda ctx, role: (
            f"/recipients/{ctx['inbox_for'][role]}/stream",
            {"params": {"follow": "false"}},
        ),
        each((Role.DEPARTMENT, *AREA, Role.SUPERVISOR), SCOPED),
    ),
    ("notify", "POST", "/subscriptions"): Case(
        fixed(
            "/subscriptions",
            json={
                "recipient_id": "sup-ya01",
                "event_types": ["case.dispatched"],
                "area_path": "YA/YA01",
            },
        ),
        each((Role.ADMIN,), ANY),
    ),
    ("notify", "GET", "/subscriptions"): Case(fixed("/subscriptions"), each((Role.ADMIN,), ANY)),
    ("notify", "DELETE", "/subscriptions/{subscription_id}"): Case(
        fixed("/subscriptions/1"), each((Role.ADMIN,), ANY)
    ),
    ("notify", "GET", "/deliveries"): Case(fixed("/deliveries"), each((Role.ADMIN,), ANY)),
    ("notify", "GET", "/deliveries/{delivery_id}"): Case(
        fixed("/deliveries/{delivery_id}"), each((Role.ADMIN,), ANY)
    ),
    ("notify", "POST", "/deliveries/{delivery_id}/replay"): Case(
        fixed("/deliveries/{delivery_id}/replay"), each((Role.ADMIN,), ANY)
    ),
    # Message templates (operators edit them): one the other rows never render.
    ("notify", "GET", "/templates"): Case(fixed("/templates"), each((Role.ADMIN,), ANY)),
    ("notify", "PUT", "/templates/{kind}/{locale}"): Case(
        fixed(
            "/templates/case.resumed/en",
            json={"title": "[Resumed] ${case_no}", "body": "${link}"},
        ),
        each((Role.ADMIN,), ANY),
    ),
    ("notify", "DELETE", "/templates/{kind}/{locale}"): Case(
        fixed("/templates/case.resumed/en"), each((Role.ADMIN,), ANY)
    ),
}
# Open on purpose: the category catalogue is public reference data (Open311 `services`), and
# so are the administrative divisions with their names and grid boundaries (notify names
# places with them). The one-time rating link is its own credential (a resident has no account).
OPEN: set[tuple[str, str, str]] = {
    ("dispatch", "GET", "/categories"),
    ("intake", "GET", "/areas/features"),
    ("intake", "GET", "/ratings/{token}"),
    ("intake", "POST", "/ratings/{token}"),
    *[
        ("intake", "GET", f"/open311/{path}.{fmt}")
        for fmt in ("json", "xml")
        for path in ("discovery", "v2/services", "v2/services/{service_code}")
    ],
}


def api_routes(app) -> list[APIRoute]:
    found: list[APIRoute] = []
    stack = list(app.routes)
    while stack:
        route = stack.pop(0)
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            stack[:0] = list(route.original_router.routes)
    return found


def rules_of(route: APIRoute) -> list[Rule]:
    rules, todo = [], [route.dependant]
    while todo:
        dependant = todo.pop()
        if isinstance(dependant.call, Rule):
            rules.append(dependant.call)
        todo.extend(dependant.dependencies)
    return rules


# --- the running system -------------------------------------------------------------------


@pytest.fixture(scope="module")
async def system(pg_server, kafka_server):
    async with four_services(pg_server, kafka_server) as services:
        yield (
            {n: s.app for n, s in services.items()},
            {n: s.client for n, s in services.items()},
            {n: s.dsn for n, s in services.items()},
        )


@pytest.fixture(scope="module")
async def ctx(system) -> dict:
    """One case through the loop up to the department, and the ids the routes need."""
    _, c, dsns = system
    community = bearer(Role.COMMUNITY, "YA/YA01/YA0101", subject="taoyuan")
    admin = bearer(Role.ADMIN)
    case = (await c["intake"].post("/cases", json=REPORT, headers=community)).json()
    other = (await c["intake"].post("/cases", json=REPORT, headers=community)).json()
    photo = (
        await c["intake"].post(
            f"/cases/{case['id']}/photos", params={"kind": "before"}, files=PHOTO, headers=community
        )
    ).json()
    await c["intake"].post(f"/cases/{case['id']}/whistle", json={}, headers=community)
    cg = bearer(Role.DEPARTMENT, department_id="cg")

    async def assignment():
        rows = (await c["dispatch"].get("/departments/cg/assignments", headers=cg)).json()
        return next((a for a in rows if a["case_id"] == case["id"]), None)

    a = await eventually(assignment, timeout=60, message="the case was dispatched to cg")

    async def intake_knows():  # intake keeps cg as the case's department (its photo rules)
        resp = await c["intake"].get(f"/cases/{case['id']}", headers=community)
        return resp.json()["status"] == "dispatched"

    await eventually(intake_knows, timeout=60, message="intake followed case.dispatched")
    cg_desk = bearer(Role.DEPARTMENT, department_id="cg")

    async def message():
        rows = (await c["notify"].get("/recipients/duty-cg/inbox", headers=cg_desk)).json()
        return next((m for m in rows if m["case_id"] == case["id"]), None)

    msg = await eventually(message, timeout=60, message="cg's duty desk heard of it")

    async def timeline():
        resp = await c["tracking"].get(
            f"/cases/{case['id']}/timeline", headers=bearer(Role.DISTRICT)
        )
        return resp.status_code == 200 and len(resp.json()["assignments"]) == 1

    await eventually(timeline, timeout=60, message="tracking knows the assignment")
    deliveries = (await c["notify"].get("/deliveries", headers=admin)).json()
    community_desk = {
        "id": "desk-taoyuan",
        "name": "桃园社区值班",
        "kind": "community",
        "area_path": "YA/YA01/YA0101",
    }
    assert (
        await c["notify"].post("/recipients", json=community_desk, headers=admin)
    ).status_code == 201
    # An extension request of cg's assignment, written as dispatch would (the assignment is
    # not signed for, so none can be asked for over HTTP without moving it on).
    conn = await asyncpg.connect(dsns["dispatch"])
    try:
        extension_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO extension_requests (id, assignment_id, case_id, department_id, days,"
            " reason, state, requested_by, requested_at) VALUES ($1, $2, $3, 'cg', 3,"
            " '需协调施工队', 'pending', 'cg-duty', now())",
            extension_id,
            uuid.UUID(a["id"]),
            uuid.UUID(case["id"]),
        )
    finally:
        await conn.close()
    return {
        "case_id": case["id"],
        "other_case_id": other["id"],
        "assignment_id": a["id"],
        "extension_id": str(extension_id),
        "photo_id": photo["id"],
        "message_id": msg["id"],
        "delivery_id": deliveries[0]["id"],
        "inbox_for": {
            Role.DEPARTMENT: "duty-cg",
            Role.COMMUNITY: "desk-taoyuan",
            # a street office reads the desks below it, never its supervisor's
            Role.STREET: "desk-taoyuan",
            Role.DISTRICT: "sup-ya01",
            Role.SUPERVISOR: "sup-ya01",
            Role.GRID_WORKER: "sup-ya01",
            Role.ADMIN: "duty-cg",
        },
    }


def assert_error_body(resp, status: int) -> None:
    """Our error shape; GeoReport's on the Open311 routes ([{"code", "description"}] in
    JSON, <errors><error> in XML)."""
    if "/open311/" not in resp.request.url.path:
        assert resp.json()["error"]["code"] and resp.json()["error"]["message"]
    elif resp.headers["content-type"].startswith("text/xml"):
        error = ET.fromstring(resp.content).find("error")
        assert error is not None and error.findtext("code") == str(status)
        assert error.findtext("description")
    else:
        assert [e["code"] for e in resp.json()] == [status] and resp.json()[0]["description"]


# --- the tests ----------------------------------------------------------------------------


def test_every_route_states_exactly_one_rule_and_has_a_row_in_the_matrix(system):
    apps, _, _ = system
    seen = set()
    for service, app in apps.items():
        for route in api_routes(app):
            for method in route.methods - {"HEAD"}:
                key = (service, method, route.path)
                seen.add(key)
                rules = rules_of(route)
                assert len(rules) == 1, f"{key} has {len(rules)} rules: {rules}"
                if route.path in PUBLIC_PATHS or key in OPEN:
                    assert rules[0].public, f"{key} should be public"
                    continue
                assert not rules[0].public, f"{key} is public but reads or changes data"
                assert key in MATRIX, f"{key} has no row in the authorisation matrix"
    assert set(MATRIX) <= seen, f"matrix rows for routes that no longer exist: {set(MATRIX) - seen}"


@pytest.mark.parametrize("key", sorted(MATRIX), ids=lambda k: f"{k[0]} {k[1]} {k[2]}")
async def test_route_matrix(system, ctx, key):
    _, clients, dsns = system
    service, method, _ = key
    case = MATRIX[key]
    client, dsn = clients[service], dsns[service]

    async def call(headers: dict, role: Role):
        path, kwargs = case.call(ctx, role)
        return await client.request(method, path, headers=headers, **kwargs)

    async def denied(headers: dict, role: Role, status: int) -> None:
        # Nothing is in flight (settled after every allowed write), so any difference is
        # the denied request's doing: its writes and its outbox rows live in this database.
        before = await snapshot(dsn)
        resp = await call(headers, role)
        assert resp.status_code == status, (role, headers.keys(), resp.status_code, resp.text)
        assert_error_body(resp, status)
        assert await snapshot(dsn) == before, f"{role} changed data although denied"

    async def allowed(headers: dict, role: Role):
        resp = await call(headers, role)
        if method != "GET":
            await settled(dsns.values())
        return resp

    await settled(dsns.values())

    # Without a usable token: 401, nothing changes.
    for headers in (
        {},
        {"Authorization": "Bearer garbage"},
        bearer(Role.ADMIN, ttl=-60),
        bearer(Role.DISTRICT, ttl=-60),
    ):
        if case.anonymous and not headers:  # a resident's own report: taken, not refused
            resp = await allowed(headers, Role.ADMIN)
            assert resp.status_code in (200, 201), resp.text
            continue
        await denied(headers, Role.ADMIN, 401)

    for role in Role:
        how = case.allowed.get(role)
        inside, outside = bearer(role, **INSIDE[role]), bearer(role, **OUTSIDE[role])
        if how is None:
            await denied(inside, role, 403)
            await denied(outside, role, 403)
            continue
        resp = await allowed(inside, role)
        assert resp.status_code not in (401, 403), (role, "inside", resp.status_code, resp.text)
        if how == FILTERED and case.must_see_case:
            assert resp.status_code == 200 and ctx["case_id"] in resp.text, (role, resp.text)
        if how == SCOPED:
            await denied(outside, role, 403)
        else:
            resp = await allowed(outside, role)
            assert resp.status_code not in (401, 403), (role, "outside", resp.status_code)
            if how == FILTERED:
                assert ctx["case_id"] not in resp.text, (role, "saw the case")


async def test_public_routes_need_no_token(system):
    apps, clients, _ = system
    for service, app in apps.items():
        for route in api_routes(app):
            if "{" in route.path:
                continue  # needs a real id (the one-time rating link is tested on its own)
            if route.path in PUBLIC_PATHS or (service, "GET", route.path) in OPEN:
                resp = await clients[service].get(route.path)
                assert resp.status_code == 200, (service, route.path, resp.status_code)


def test_matrix_keys_are_real_uuids_free():  # guard: no row names a concrete id by mistake
    for key in MATRIX:
        for part in key[2].split("/"):
            with pytest.raises(ValueError):
                uuid.UUID(part)
