"""The seeds' counts (基层治理): what the grid closes itself and where cases come from.

- 随手做 / 小事不出网格: a case closed on the spot by its grid worker (``resolution`` on_spot)
  counts for the worker who closed it, his grid, and every area above it. 小事不出网格率
  ``grid_level_rate`` = closed on the spot / closed, over the cases closed in a period (a case
  reopened since is not closed).
- 案件来源: the cases reported in a period per source (grid patrol, resident, 12345 hotline,
  WeChat group, 未诉先办), per area. An event from before the contract named a source counts as
  grid_patrol, the contract's default.

The facts come already counted per grid (the repository groups them); here they are summed up
the tree. Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.tracking.domain.kpi import Rate
from shared.contract.values import CaseSource, Resolution

# Bilingual names of the sources, Chinese first.
SOURCE_LABELS: dict[CaseSource, tuple[str, str]] = {
    CaseSource.GRID_PATROL: ("网格巡查", "Grid patrol"),
    CaseSource.RESIDENT: ("群众上报", "Resident report"),
    CaseSource.HOTLINE: ("12345热线", "12345 hotline"),
    CaseSource.WECHAT_GROUP: ("微信群", "WeChat group"),
    CaseSource.PROACTIVE: ("未诉先办", "Proactive (before any complaint)"),
}


def source_of(raw: str | None) -> CaseSource:
    """A recorded source; none (an event older than the field) is grid_patrol."""
    return CaseSource(raw) if raw else CaseSource.GRID_PATROL


def area_at(path: str, depth: int) -> str:
    """The area ``depth`` levels down from the district that ``path`` lies in."""
    return "/".join(path.split("/")[:depth])


@dataclass(frozen=True)
class ClosingCount:
    """Cases of one grid closed in a period the same way by the same person."""

    area_path: str
    resolution: Resolution
    closed_by: str | None  # the closer's subject
    closed_by_name: str | None
    count: int


@dataclass(frozen=True)
class SourceCount:
    """Cases of one grid reported in a period from one source."""

    area_path: str
    source: CaseSource
    count: int


@dataclass(frozen=True)
class GridWork:
    closed: int = 0
    on_spot: int = 0

    @property
    def grid_level_rate(self) -> Rate:
        """小事不出网格率: closed on the spot / closed."""
        return Rate(self.on_spot, self.closed)

    def __add__(self, other: GridWork) -> GridWork:
        return GridWork(self.closed + other.closed, self.on_spot + other.on_spot)


@dataclass
class WorkerWork:
    """One grid worker's 随手做: the cases he closed on the spot, and in which grids."""

    subject: str
    name: str | None
    on_spot: int = 0
    grids: set[str] = field(default_factory=set)


def _work(c: ClosingCount) -> GridWork:
    return GridWork(c.count, c.count if c.resolution is Resolution.ON_SPOT else 0)


def grid_work_by_area(counts: Iterable[ClosingCount], depth: int) -> dict[str, GridWork]:
    """Per area ``depth`` levels down (1 district … 4 grid), each covering its subtree."""
    out: dict[str, GridWork] = defaultdict(GridWork)
    for c in counts:
        key = area_at(c.area_path, depth)
        out[key] = out[key] + _work(c)
    return dict(sorted(out.items()))


def grid_work_total(counts: Iterable[ClosingCount]) -> GridWork:
    total = GridWork()
    for c in counts:
        total = total + _work(c)
    return total


def grid_work_by_worker(counts: Iterable[ClosingCount]) -> list[WorkerWork]:
    """The workers who closed cases on the spot, most first (then by subject)."""
    workers: dict[str, WorkerWork] = {}
    for c in counts:
        if c.resolution is not Resolution.ON_SPOT or not c.count:
            continue
        subject = c.closed_by or "unknown"
        w = workers.setdefault(subject, WorkerWork(subject, c.closed_by_name))
        w.name = w.name or c.closed_by_name
        w.on_spot += c.count
        w.grids.add(c.area_path)
    return sorted(workers.values(), key=lambda w: (-w.on_spot, w.subject))


def sources_by_area(counts: Iterable[SourceCount], depth: int) -> dict[str, dict[CaseSource, int]]:
    """Per area ``depth`` levels down: the cases reported from each source (every source
    listed, zero included)."""
    out: dict[str, dict[CaseSource, int]] = {}
    for c in counts:
        row = out.setdefault(area_at(c.area_path, depth), dict.fromkeys(CaseSource, 0))
        row[c.source] += c.count
    return dict(sorted(out.items()))


def sources_total(counts: Iterable[SourceCount]) -> dict[CaseSource, int]:
    total = dict.fromkeys(CaseSource, 0)
    for c in counts:
        total[c.source] += c.count
    return total
