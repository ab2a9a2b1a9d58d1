"""GET requests, requests/{id} and tokens/{id}: query arguments, and a case read as a
GeoReport service request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from services.intake.domain.open311.common import (
    CHINA,
    MAX_PAGE_SIZE,
    MAX_WINDOW,
    NOTICES,
    Problem,
    Refused,
    field,
)
from services.intake.domain.sources import dismissal_notes
from shared.errors import NotFound
from shared.lifecycle import STATUS_ZH

_STATUS_NOTES = {status.value: label for status, label in STATUS_ZH.items()}


@dataclass(frozen=True)
class RequestQuery:
    """GET requests' filters. ``case_ids``/``case_nos`` (service_request_id) override the
    others; ``start``/``end`` bound the requested_datetime (both inclusive)."""

    case_ids: tuple[UUID, ...] = ()
    case_nos: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    closed: bool | None = None  # None: open and closed alike
    start: datetime | None = None
    end: datetime | None = None
    limit: int = MAX_PAGE_SIZE
    offset: int = 0


def _listed(raw: str | None) -> tuple[str, ...]:
    """GeoReport lists are comma delimited."""
    return tuple(dict.fromkeys(p.strip() for p in (raw or "").split(",") if p.strip()))


def parse_ref(ref: str) -> UUID | str:
    """A service_request_id: our UUID, or else a case number."""
    try:
        return UUID(ref)
    except ValueError:
        return ref


def _w3(raw: str | None, name: str, problems: list[Problem]) -> datetime | None:
    if raw is None:
        return None
    try:
        value: datetime | None = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        problems.append(
            (
                f"{name} 须为带时区的 W3C 时间，如 2010-01-01T00:00:00Z",
                f"{name} must be a W3C datetime with a timezone, e.g. 2010-01-01T00:00:00Z",
            )
        )
        return None
    return value


def _whole(raw: str | None, name: str, default: int, most: int, problems: list[Problem]) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        problems.append(
            (
                f"{name} 须为 1 到 {most} 之间的整数",
                f"{name} must be a whole number from 1 to {most}",
            )
        )
        return default
    return int(raw)


def _window(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The 90 days up to now unless told; one bound alone reaches 90 days from it."""
    if start is None:
        end = end or now
        return end - MAX_WINDOW, end
    end = end or start + MAX_WINDOW
    if start > end:
        raise Refused([("start_date 晚于 end_date", "start_date is after end_date")])
    if end - start > MAX_WINDOW:
        raise Refused(
            [
                (
                    "查询时间跨度不能超过 90 天",
                    "start_date to end_date may not span more than 90 days",
                )
            ]
        )
    return start, end


def parse_query(params: Mapping[str, str], now: datetime) -> RequestQuery:
    """GET requests' arguments (page and page_size: the common paging extension)."""
    problems: list[Problem] = []
    size = _whole(field(params, "page_size"), "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE, problems)
    page = _whole(field(params, "page"), "page", 1, 1_000_000, problems)
    limit, offset = size, (page - 1) * size
    ids = _listed(field(params, "service_request_id"))
    statuses = set(_listed(field(params, "status")))
    if not ids and statuses - {"open", "closed"}:
        problems.append(("status 只能是 open 或 closed", "status must be open or closed"))
    start = _w3(field(params, "start_date"), "start_date", problems) if not ids else None
    end = _w3(field(params, "end_date"), "end_date", problems) if not ids else None
    if problems:
        raise Refused(problems)
    if ids:  # "This overrides all other arguments."
        refs = [parse_ref(i) for i in ids]
        return RequestQuery(
            case_ids=tuple(r for r in refs if isinstance(r, UUID)),
            case_nos=tuple(r for r in refs if isinstance(r, str)),
            limit=limit,
            offset=offset,
        )
    start, end = _window(start, end, now)
    closed = statuses == {"closed"} if len(statuses) == 1 else None
    return RequestQuery(
        service_codes=_listed(field(params, "service_code")),
        closed=closed,
        start=start,
        end=end,
        limit=limit,
        offset=offset,
    )


@dataclass(frozen=True)
class CaseView:
    """What GeoReport shows of a case (read by open311's repository)."""

    id: UUID
    case_no: str
    area_path: str
    category: str
    category_name: str | None
    description: str
    priority: str
    lat: float | None
    lon: float | None
    address: str | None
    status: str
    departments: list[str]
    community_name: str | None
    reported_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    deadline_at: datetime | None = None  # the nearest open deadline (from tracking's clocks)
    # a resident's report not taken on (不予受理): why, as the grid worker wrote it
    dismissed_reason: str | None = None
    dismissed_note: str | None = None
    duplicate_case_no: str | None = None
    # when it will actually be resolved (tracking's forecast; never past while open)
    expected_resolution_at: datetime | None = None


def open_or_closed(status: str) -> str:
    return "closed" if status == "closed" else "open"


def agency_responsible(departments: list[str], community_name: str | None) -> str:
    """The departments on the case (named in the whistle or assigned by dispatch); until then
    its community holds it."""
    return "、".join(departments) if departments else (community_name or "社区")


def status_notes(case: CaseView) -> str:
    """The Chinese status label; for a dismissed resident's report, the reason."""
    if case.dismissed_reason:
        return dismissal_notes(case.dismissed_reason, case.dismissed_note, case.duplicate_case_no)
    return _STATUS_NOTES.get(case.status, case.status)


def w3(moment: datetime | None) -> str | None:
    """GeoReport's date format: ISO 8601 with the offset, shown in China Standard Time."""
    return moment.astimezone(CHINA).isoformat(timespec="seconds") if moment else None


def service_request(case: CaseView) -> dict[str, Any]:
    """One service request as GET requests and GET requests/{id} show it."""
    status = open_or_closed(case.status)
    updated = case.closed_at if status == "closed" and case.closed_at else case.updated_at
    return {
        "service_request_id": case.case_no,
        "status": status,
        "status_notes": status_notes(case),
        "service_name": case.category_name,
        "service_code": case.category,
        "description": case.description,
        "agency_responsible": agency_responsible(case.departments, case.community_name),
        "service_notice": NOTICES.get(case.priority),
        "requested_datetime": w3(case.reported_at),
        "updated_datetime": w3(updated),
        # 预计办结时间: tracking's forecast, not the nearest (e.g. sign-for) deadline
        "expected_datetime": w3(case.expected_resolution_at),
        "address": case.address,
        "address_id": None,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lon,
        "media_url": None,
    }


def is_receipt(token: str) -> bool:
    """A resident's token (random, 32 URL-safe characters), not a case's UUID."""
    try:
        UUID(token)
    except ValueError:
        return True
    return False


def token_id(token: str) -> UUID:
    """tokens/{id}: a token is the case's UUID (we create cases synchronously) — for staff;
    a resident's token is his receipt."""
    try:
        return UUID(token)
    except ValueError:
        raise NotFound(
            f"令牌 {token} 不存在", f"token {token} not found", code="token_not_found"
        ) from None


def token_answer(case_no: str, token: UUID | str) -> dict[str, Any]:
    return {"service_request_id": case_no, "token": str(token)}
