"""A case's history to take away (导出): ``GET /cases/{case_id}/history?format=json|csv``.

- ``json`` (the default): exactly the timeline (``GET /cases/{case_id}/timeline``), as a file;
- ``csv``: one row per event — time (Beijing time), type, its Chinese label, who did it, the
  department it concerns and a readable summary — UTF-8 with a byte-order mark, so Excel opens
  the Chinese correctly.

Both are named in ``Content-Disposition`` (``<case_no>-history.json|csv``). Who may export a
case: whoever may read its timeline (the same rule and the same handler).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from services.tracking.api import history
from services.tracking.domain import policy
from services.tracking.domain.policy import CLOCK_ZH
from shared.auth import AREA_ROLES, ROLE_ZH, Principal, Role, allow
from shared.clock import BEIJING
from shared.service import Pool

router = APIRouter(tags=["export"])
Readers = allow(Role.GRID_WORKER, *AREA_ROLES, Role.SUPERVISOR, Role.DEPARTMENT)

LOCAL = BEIJING
# ?format= of the exports (here and the KPI tables)
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]
LEVEL_ZH: dict[str, str] = {"grid": "网格", **policy.LEVEL_ZH}  # a payload's level may be a grid
# What a summary shows of a payload, in this order: (field, label).
SUMMARY_FIELDS = (
    ("description", "描述"),
    ("result", "办理结果"),
    ("reason", "原因"),
    ("note", "说明"),
    ("score", "评分"),
    ("comment", "评语"),
    ("approved", "同意"),
    ("days", "天数"),
    ("kind", "类别"),
    ("clock", "时限"),
    ("due_at", "截止"),
    ("level", "层级"),
    ("step", "第几级"),
    ("count", "次数"),
    ("departments", "部门"),
    ("to_department_id", "转至部门"),
    ("primary_case_no", "并入案件"),
    ("role", "主协办"),
    ("because", "因"),
)
HEADER = ("时间（北京时间）", "类型", "事件", "操作人", "角色", "部门", "摘要", "事件编号")


def local_time(at: datetime | str) -> str:
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return when.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")


def _shown(field: str, value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if field == "due_at":
        return local_time(value)
    if field == "clock":
        return CLOCK_ZH.get(value, value)
    if field == "level":
        return LEVEL_ZH.get(value, value)
    if field == "role":
        return {"lead": "主办", "co": "协办"}.get(value, value)
    if field == "score":
        return f"{value}分"
    return str(value)


def summary(payload: dict[str, Any]) -> str:
    """The payload for a person: ``原因：不属于本部门；说明：…`` (what is set, in a fixed order)."""
    parts = [
        f"{label}：{_shown(field, payload[field])}"
        for field, label in SUMMARY_FIELDS
        if payload.get(field) not in (None, "", [])
    ]
    return "；".join(parts)


def _actor(actor: dict[str, Any] | None) -> tuple[str, str]:
    if not actor:
        return "", ""
    name, subject = actor.get("name"), actor["subject"]
    role = actor.get("role", "")
    try:
        role_zh = ROLE_ZH[Role(role)]
    except ValueError:
        role_zh = "系统" if role == "system" else role
    return (f"{name}（{subject}）" if name and name != subject else subject), role_zh


# A text cell starting with one of these is a formula to Excel/WPS (CSV injection): names and
# notes come from users, so such a cell is written with a leading apostrophe, shown as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with a byte-order mark (Excel reads the Chinese right), CRLF line ends; text
    that a spreadsheet would run as a formula is kept as text."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def disposition(filename: str) -> str:
    """``attachment; filename="…"`` with anything but ASCII letters, digits, ``.-_`` replaced."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in ".-_") else "_" for c in filename)
    return f'attachment; filename="{safe}"'


def attachment(body: bytes, filename: str, media_type: str) -> Response:
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": disposition(filename)}
    )


def timeline_rows(timeline: history.TimelineOut) -> list[list[str]]:
    names = {a.department_id: a.department_name for a in timeline.assignments}
    rows = []
    for e in timeline.events:
        dept_id = e.payload.get("department_id")
        dept = e.payload.get("department_name") or names.get(dept_id or "") or dept_id or ""
        who, role = _actor(e.actor.model_dump() if e.actor else None)
        rows.append(
            [
                local_time(e.occurred_at),
                e.type,
                e.label,
                who,
                role,
                dept,
                summary(e.payload),
                str(e.event_id),
            ]
        )
    return rows


@router.get(
    "/cases/{case_id}/history",
    summary="Export a case's history as a file: JSON (the timeline) or CSV for Excel "
    "(案件全过程导出)",
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
async def export_history(
    case_id: UUID,
    db: Pool,
    who: Annotated[Principal, Depends(Readers)],
    format: Format = "json",
) -> Response:
    timeline = await history.case_timeline(case_id, db, who)
    name = f"{timeline.case.case_no}-history.{format}"
    if format == "json":
        response = JSONResponse(timeline.model_dump(mode="json"))
        response.headers["Content-Disposition"] = disposition(name)
        return response
    return attachment(csv_bytes(HEADER, timeline_rows(timeline)), name, "text/csv; charset=utf-8")
