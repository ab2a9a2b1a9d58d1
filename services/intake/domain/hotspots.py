"""未诉先办 ("handle it before anyone complains"): hotspots — the cases of one category
that keep coming back in one grid over a few weeks — proposed to the community as one
proactive case that fixes the cause. Pure rules: no I/O, ``now`` is passed in.

A hotspot is named by its grid, its category and the start of the period it counts
(``YA0101-03.E0101.20261102000000``, Beijing time): the same cluster keeps the same id while
the period does, so it is proposed, accepted or dismissed once. The period starts on the
Monday ``weeks - 1`` weeks before this one, or later, at the last decision taken on the
grid's category: what was accepted or dismissed is not counted again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from shared.clock import BEIJING
from shared.errors import Conflict, NotFound

DEFAULT_WEEKS, MIN_WEEKS, MAX_WEEKS = 4, 1, 12
DEFAULT_MIN_CASES, MIN_CASES, MAX_MIN_CASES = 3, 2, 50
SEPARATOR = "."
_ANCHOR_FORMAT = "%Y%m%d%H%M%S"
EVIDENCE_CASE_NOS = 10  # case numbers quoted in a proactive case's description

ACCEPTED, DISMISSED = "accepted", "dismissed"


class DismissReason(StrEnum):
    """Why a community sets a hotspot aside (it is not proposed again for its period)."""

    ALREADY_HANDLED = "already_handled"  # the cause was already fixed
    SEASONAL = "seasonal"  # e.g. fallen leaves in autumn
    NOT_ACTIONABLE = "not_actionable"  # beyond what this level can fix
    OTHER = "other"


DISMISS_REASON_ZH = {
    DismissReason.ALREADY_HANDLED: "已处置",
    DismissReason.SEASONAL: "季节性问题",
    DismissReason.NOT_ACTIONABLE: "非本级可解决",
    DismissReason.OTHER: "其他",
}


@dataclass(frozen=True)
class ClusterCase:
    """What detection needs to know of one case."""

    id: UUID
    case_no: str
    grid_code: str
    area_path: str
    category: str
    reported_at: datetime
    status: str
    lat: float | None
    lon: float | None
    address: str | None
    rework_count: int = 0
    reopen_count: int = 0
    merged: bool = False  # a duplicate merged into another case: its primary counts
    proactive: bool = False  # opened from a hotspot itself: never evidence of one
    refused: bool = False  # a resident's report found groundless on site (不予受理)


@dataclass(frozen=True)
class HotspotKey:
    grid_code: str
    category: str
    start: datetime  # the period counted starts here (aware)

    @property
    def id(self) -> str:
        anchor = self.start.astimezone(BEIJING).strftime(_ANCHOR_FORMAT)
        return SEPARATOR.join((self.grid_code, self.category, anchor))


def parse_id(hotspot_id: str) -> HotspotKey:
    """The key a hotspot id names; a malformed id is a hotspot that does not exist."""
    grid, _, rest = hotspot_id.partition(SEPARATOR)
    category, _, anchor = rest.rpartition(SEPARATOR)
    try:
        start = datetime.strptime(anchor, _ANCHOR_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        start = None
    if not grid or not category or start is None:
        raise not_found(hotspot_id, "编号格式应为 网格.分类.起始时间", "malformed id")
    return HotspotKey(grid, category, start)


def not_found(hotspot_id: str, zh_why: str, en_why: str) -> NotFound:
    return NotFound(
        f"热点 {hotspot_id} 不存在（{zh_why}）",
        f"hotspot {hotspot_id} not found ({en_why})",
        code="hotspot_not_found",
    )


def week_start(at: datetime) -> datetime:
    """Monday 00:00 Beijing time of ``at``'s week."""
    day = at.astimezone(BEIJING).date()
    return datetime.combine(day - timedelta(days=day.weekday()), time(), tzinfo=BEIJING)


def window_start(now: datetime, weeks: int) -> datetime:
    """The first instant of a window of ``weeks`` calendar weeks ending with this one."""
    return week_start(now) - timedelta(weeks=weeks - 1)


@dataclass(frozen=True)
class Hotspot:
    key: HotspotKey
    area_path: str
    cases: tuple[ClusterCase, ...]  # oldest first
    weekly: tuple[int, ...]  # cases per calendar week, the period's first week first

    @property
    def id(self) -> str:
        return self.key.id

    @property
    def case_count(self) -> int:
        return len(self.cases)

    @property
    def first_reported_at(self) -> datetime:
        return self.cases[0].reported_at

    @property
    def last_reported_at(self) -> datetime:
        return self.cases[-1].reported_at

    @property
    def reworked(self) -> int:
        """Cases of the cluster sent back at least once (返工)."""
        return sum(1 for c in self.cases if c.rework_count > 0)

    @property
    def reopened(self) -> int:
        """Cases of the cluster reopened at least once (重新打开)."""
        return sum(1 for c in self.cases if c.reopen_count > 0)

    @property
    def open_cases(self) -> int:
        return sum(1 for c in self.cases if c.status != "closed")

    @property
    def centroid(self) -> tuple[float, float] | None:
        """(lat, lon): the mean of the cases' points (a grid is small enough for a plain mean)."""
        points = [(c.lat, c.lon) for c in self.cases if c.lat is not None and c.lon is not None]
        if not points:
            return None
        return (
            round(sum(p[0] for p in points) / len(points), 6),
            round(sum(p[1] for p in points) / len(points), 6),
        )

    @property
    def address(self) -> str | None:
        """The address written most often on the cases (ties: the latest case's)."""
        counts = Counter(c.address for c in reversed(self.cases) if c.address)
        return counts.most_common(1)[0][0] if counts else None


def _weekly(start: datetime, now: datetime, cases: Iterable[ClusterCase]) -> tuple[int, ...]:
    first = week_start(start)
    counts = [0] * ((week_start(now) - first).days // 7 + 1)
    for c in cases:
        index = (week_start(c.reported_at) - first).days // 7
        if 0 <= index < len(counts):
            counts[index] += 1
    return tuple(counts)


def cluster(key: HotspotKey, cases: Iterable[ClusterCase], now: datetime) -> Hotspot | None:
    """The cluster ``key`` names: its grid's cases of its category from its start to ``now``
    (merged duplicates once, through their primary; proactive cases and residents' reports
    refused on site never)."""
    mine = sorted(
        (
            c
            for c in cases
            if c.grid_code == key.grid_code
            and c.category == key.category
            and key.start <= c.reported_at <= now
            and not (c.merged or c.proactive or c.refused)
        ),
        key=lambda c: (c.reported_at, c.case_no),
    )
    if not mine:
        return None
    return Hotspot(key, mine[0].area_path, tuple(mine), _weekly(key.start, now, mine))


def detect(
    cases: Iterable[ClusterCase],
    *,
    now: datetime,
    weeks: int,
    min_cases: int,
    decided: Mapping[tuple[str, str], datetime],
) -> list[Hotspot]:
    """Every grid × category with at least ``min_cases`` cases in the last ``weeks`` weeks
    (counting closed and fixed-on-the-spot cases too), after its last decision (``decided``:
    (grid, category) → when) — most cases first, then the most recent."""
    start = window_start(now, weeks)
    groups: dict[tuple[str, str], list[ClusterCase]] = {}
    for c in cases:
        groups.setdefault((c.grid_code, c.category), []).append(c)
    found = []
    for (grid, category), members in groups.items():
        since = max(start, decided.get((grid, category), start))
        spot = cluster(HotspotKey(grid, category, since), members, now)
        if spot is not None and spot.case_count >= min_cases:
            found.append(spot)
    return sorted(found, key=lambda h: (-h.case_count, -h.last_reported_at.timestamp(), h.id))


def check_current(key: HotspotKey, last_decided_at: datetime | None, now: datetime) -> None:
    """A hotspot can be decided while its period is one a listing could propose: not in the
    future, not older than the longest window, not before a later decision on its grid's
    category (that decision superseded it)."""
    if key.start > now or key.start < window_start(now, MAX_WEEKS):
        raise not_found(
            key.id, f"起始时间须在近{MAX_WEEKS}周内", f"outside the last {MAX_WEEKS} weeks"
        )
    if last_decided_at is not None and last_decided_at > key.start:
        raise Conflict(
            f"该网格的此类问题已于 {last_decided_at.astimezone(BEIJING):%Y-%m-%d %H:%M} 处理过，"
            "请刷新热点列表",
            f"this grid's {key.category} cases were decided at {last_decided_at.isoformat()}; "
            "reload the hotspots",
            code="hotspot_superseded",
        )


def check_enough(spot: Hotspot | None, key: HotspotKey) -> Hotspot:
    if spot is None or spot.case_count < MIN_CASES:
        raise not_found(key.id, f"该时段同类案件不足{MIN_CASES}件", f"fewer than {MIN_CASES} cases")
    return spot


def check_decision(hotspot_id: str, earlier: str, wanted: str) -> None:
    """Deciding again the same way is a replay; the other way is a conflict."""
    if earlier != wanted:
        zh = {ACCEPTED: "已转为主动办理案件", DISMISSED: "已被忽略"}[earlier]
        raise Conflict(
            f"热点 {hotspot_id} {zh}，不能再{'忽略' if wanted == DISMISSED else '受理'}",
            f"hotspot {hotspot_id} was already {earlier}",
            code="hotspot_decided",
        )


def proactive_description(spot: Hotspot, category_name: str) -> str:
    """The proactive case's description (Chinese: it is what the departments read)."""
    numbers = [c.case_no for c in spot.cases]
    quoted = "、".join(numbers[:EVIDENCE_CASE_NOS]) + (
        "等" if len(numbers) > EVIDENCE_CASE_NOS else ""
    )
    repeats = [
        f"返工{spot.reworked}件" if spot.reworked else "",
        f"重新打开{spot.reopened}件" if spot.reopened else "",
    ]
    extra = "，其中" + "、".join(r for r in repeats if r) if any(repeats) else ""
    return (
        f"未诉先办：本网格近{len(spot.weekly)}周同类问题（{category_name}）反复出现"
        f"{spot.case_count}次（案件号：{quoted}）{extra}，主动处置根源"
    )


def evidence(spot: Hotspot) -> dict[str, Any]:
    """The hotspot as shown and as kept with a decision (JSON values only)."""
    centroid = spot.centroid
    return {
        "id": spot.id,
        "grid_code": spot.key.grid_code,
        "area_path": spot.area_path,
        "category": spot.key.category,
        "period_start": spot.key.start.isoformat(),
        "case_count": spot.case_count,
        "first_reported_at": spot.first_reported_at.isoformat(),
        "last_reported_at": spot.last_reported_at.isoformat(),
        "weekly": list(spot.weekly),
        "reworked": spot.reworked,
        "reopened": spot.reopened,
        "open_cases": spot.open_cases,
        "location": {
            "lat": centroid[0] if centroid else None,
            "lon": centroid[1] if centroid else None,
            "address": spot.address,
        },
        "cases": [
            {
                "id": str(c.id),
                "case_no": c.case_no,
                "reported_at": c.reported_at.isoformat(),
                "status": c.status,
            }
            for c in spot.cases
        ],
    }
