"""The supervisors' boards (督办): what is late (超时, most late first), what is about to be
(临期, least time left first), their live stream (Server-Sent Events) and, from ``urging``,
hurrying the departments (督办).

Who may read what (the scope is checked by the handler): community, street, district and
supervisors see their subtree (an ``area`` filter must lie inside it); department staff see
their own department's items. A filter outside the caller's part is refused (403), an unknown
query parameter or a bad value is 422.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import anyio
import asyncpg
import structlog
from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from services.tracking import handlers
from services.tracking.api import urging
from services.tracking.domain import CaseStatus, Clock, board
from services.tracking.domain.board import Board, BoardItem
from services.tracking.domain.policy import CLOCK_ZH, LEVEL_ZH
from services.tracking.handlers.boards import BoardQuery
from services.tracking.stream import BoardStreams
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.contract import Priority
from shared.errors import Invalid
from shared.dto import fill
from shared.service import Pool
from shared.sse import until_expiry

log = structlog.get_logger()
router = APIRouter(tags=["boards"])
router.include_router(urging.router)  # 督办 acts on what the boards show
Reader = Annotated[Principal, Depends(allow(*AREA_ROLES, Role.SUPERVISOR, Role.DEPARTMENT))]

# Category codes are prefixed: a 大类 (E01) covers its 小类 (E0101).
_CATEGORY = re.compile(r"^[A-Z][0-9]{2}(?:[0-9]{2})*$")
_FILTERS = {"area", "department_id", "category", "priority", "clock"}


def _only(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise Invalid(
            f"未知的查询参数：{'、'.join(unknown)}（可用：{'、'.join(sorted(allowed))}）",
            f"unknown query parameter(s): {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})",
            code="unknown_parameter",
        )


async def board_query(
    area: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="area path prefix, e.g. YA/YA01"),
    ] = None,
    department_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    category: Annotated[
        str | None,
        Query(
            min_length=3,
            max_length=16,
            description="a category code; a 大类 (E01) covers its 小类 (E0101)",
        ),
    ] = None,
    priority: Priority | None = None,
    clock: Annotated[
        Clock | None, Query(description="sign_for (签收), on_site (到场) or resolve (办结)")
    ] = None,
) -> BoardQuery:
    if category is not None and not _CATEGORY.match(category):
        raise Invalid(
            f"分类编码“{category}”格式无效（应如 E01 或 E0101）",
            f"invalid category code '{category}' (expected e.g. E01 or E0101)",
            code="invalid_category",
        )
    stripped = area.rstrip("/") if area else None
    if area is not None and not stripped:
        raise Invalid("辖区路径不能为空", "the area path must not be empty", code="invalid_area")
    return BoardQuery(
        stripped,
        department_id,
        category,
        priority.value if priority else None,
        clock.value if clock else None,
    )


Filters = Annotated[BoardQuery, Depends(board_query)]


class BoardItemOut(BaseModel):
    case_id: UUID
    case_no: str
    area_path: str
    category: str
    priority: Priority
    status: CaseStatus
    assignment_id: UUID
    department_id: str
    department_name: str | None
    clock: str = Field(description="sign_for (签收), on_site (到场) or resolve (办结)")
    clock_label: str
    started_at: datetime
    warn_at: datetime | None
    due_at: datetime
    overdue_seconds: float = Field(description="how late (0 on the near-overdue board)")
    seconds_left: float = Field(description="time left (0 on the overdue board)")
    label: str = Field(description="超时 2小时5分 / 剩余 25分钟")
    overdue_alerted_at: datetime | None = Field(
        description="when the overdue alert of the current deadline fired (none yet: null)"
    )
    escalation_level: str | None = Field(
        description="the last level the escalation ladder reached: community, street or district"
    )
    escalation_level_label: str | None
    escalation_step: int | None
    urge_count: int = Field(description="how often the assignment was urged (督办)")
    last_urged_at: datetime | None
    expected_resolution_at: datetime | None = Field(
        description="the resolution forecast (预计办结时间) of a resolution clock"
    )
    expected_earliest: datetime | None
    expected_latest: datetime | None
    predicted: bool = Field(
        description="on the near-overdue board by its forecast alone, before the warning (预计超期)"
    )
    breach_likely: bool = Field(description="the forecast says it will likely miss the deadline")
    breach_probability: float | None
    breach_reason: str | None = Field(description="why, in Chinese (按该部门近30天同类案件…)")
    breach_reason_en: str | None

    @classmethod
    def of(cls, i: BoardItem, which: Board, now: datetime) -> BoardItemOut:
        late, left = i.late_by(now), i.left(now)
        return fill(
            cls,
            i,
            clock=i.clock.value,
            clock_label=CLOCK_ZH[i.clock],
            overdue_seconds=round(late.total_seconds(), 3),
            seconds_left=round(left.total_seconds(), 3),
            label=board.lateness_label(late)
            if which is Board.OVERDUE
            else board.time_left_label(left),
            escalation_level_label=LEVEL_ZH.get(i.escalation_level or ""),
            expected_resolution_at=i.expected_at,
            predicted=which is Board.NEAR_OVERDUE and i.predicted(now),
            breach_reason=i.breach_reason_zh,
        )


class BoardOut(BaseModel):
    as_of: datetime
    items: list[BoardItemOut]


async def _board(
    request: Request,
    db: asyncpg.Pool,
    who: Principal,
    which: Board,
    q: BoardQuery,
    limit: int,
    offset: int,
) -> BoardOut:
    _only(request, _FILTERS | {"limit", "offset"})
    now = datetime.now(UTC)
    items = await handlers.read_board(db, who, which, q, now=now, limit=limit, offset=offset)
    return BoardOut(as_of=now, items=[BoardItemOut.of(i, which, now) for i in items])


Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=100_000)]


@router.get(
    "/overdue",
    response_model=BoardOut,
    summary="The overdue board: every running clock past its deadline (签收、到场、办结), "
    "most late first, with the escalation level reached and the urgings (超时督办)",
)
async def overdue(
    request: Request, db: Pool, who: Reader, q: Filters, limit: Limit = 100, offset: Offset = 0
) -> BoardOut:
    return await _board(request, db, who, Board.OVERDUE, q, limit, offset)


@router.get(
    "/near-overdue",
    response_model=BoardOut,
    summary="The near-overdue board: running clocks past their warning instant but not "
    "yet due, and resolution clocks likely to miss their deadline by the forecast even before "
    "their warning (预计超期, `predicted` with the reason), least time left first (临期预警, 黄灯)",
)
async def near_overdue(
    request: Request, db: Pool, who: Reader, q: Filters, limit: Limit = 100, offset: Offset = 0
) -> BoardOut:
    return await _board(request, db, who, Board.NEAR_OVERDUE, q, limit, offset)


@router.get(
    "/boards/stream",
    response_class=EventSourceResponse,
    summary="The boards' live stream (Server-Sent Events): a clock started, moved, stopped, "
    "paused or resumed, a warning, an overdue alert, an escalation, an urging — scoped and "
    "filtered like the boards",
    description="Each message's `event:` is the change (started, moved, stopped, paused, "
    "resumed, warned, overdue, escalated, urged; `ready` first), its `id:` the position after "
    "it: a browser reconnecting sends it back as `Last-Event-ID` and misses nothing "
    "(`last_event_id` does the same as a query parameter). Comments are sent as heartbeats. "
    "`follow=false` sends what is there and ends.",
)
async def board_stream(
    request: Request,
    db: Pool,
    who: Reader,
    q: Filters,
    last_event_id: Annotated[str | None, Query(max_length=64)] = None,
    follow: bool = True,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=64)
    ] = None,
) -> EventSourceResponse:
    _only(request, _FILTERS | {"last_event_id", "follow"})
    f = handlers.board_filter(who, q)  # refuses before the stream starts
    streams: BoardStreams = request.app.state.board_streams
    raw = last_event_id_header or last_event_id
    horizon = await handlers.feed_start(db)
    after = board.parse_position(raw) if raw else horizon
    if after is None:
        raise Invalid(
            f"Last-Event-ID“{raw}”无效（应为本流发出的编号，如 812-40）",
            f"invalid Last-Event-ID '{raw}' (expected an id this stream sent, e.g. 812-40)",
            code="invalid_last_event_id",
        )
    # Every id this stream sends lies at or below the horizon (the oldest transaction still
    # running); one beyond it was never sent here — a browser that followed another database,
    # say one rebuilt — and would leave the stream silent until the transaction ids caught up
    # with it. It starts from now instead, like a stream opened without one (the browser's
    # EventSource gives up on a 4xx, so refusing it would leave the board dead).
    if after > horizon:
        log.info("board_stream_unknown_position", last_event_id=raw, horizon=str(horizon))
        after = horizon
    settings = request.app.state.runtime.settings
    shutdown = anyio.Event()  # set by sse-starlette when the server begins to shut down
    return EventSourceResponse(
        until_expiry(
            streams.follow(db, f, after, follow=follow, shutdown=shutdown), who.expires_at
        ),
        ping=settings.board_stream_heartbeat_seconds,
        shutdown_event=shutdown,
        # the stream notices within one poll and ends with a complete response
        shutdown_grace_period=settings.board_stream_poll_seconds + 2.0,
    )
