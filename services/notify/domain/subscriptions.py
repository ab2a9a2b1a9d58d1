"""Who hears what: the defaults, and subscriptions by event type × area subtree ×
department × category × priority.

Defaults (no configuration needed):
- a department's desks hear its dispatches (派单), warnings (预警) and urgings (督办: its case
  is overdue);
- the reporter's side — the community and grid-worker desks of the case's area — hear the
  resolution (办结) and the closure (结案);
- supervisors hear overdue cases (超时) and street- or district-level whistles (吹哨升级) in
  the area subtree they oversee; tracking's escalation ladder (逐级上报) reaches the
  supervisor and community desks of the level it names (community, street, district) for
  the case's area, one level after the other;
- a department's desks hear its urgings (督办, ``case.urged``) and the decisions on what it
  asked for: an extension (延期) granted or refused, a pause (挂账/缓办) granted or refused,
  and the end of a pause (恢复办理);
- supervisors hear the extension and pause requests of their area subtree: they decide them.

A subscription adds a recipient for what it matches; every condition left empty matches
anything. A recipient hears each event once, whichever rules name it.

A recipient may opt out of (mute) a default, except what asks it to act at once
(``MUST_HEAR``): a department its dispatches (派单) and urgings (督办), a supervisor or
community the escalations that reached its level (逐级上报) and the requests waiting for its
decision. What it subscribed to explicitly it hears even if muted (it asked for it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.notify.domain.core import (
    CaseNotice,
    NoticeKind,
    Recipient,
    RecipientKind,
)
from shared.contract import Level, areas
from shared.errors import Invalid

PRIORITIES = ("urgent", "normal", "minor")
_CATEGORY = re.compile(r"^[A-Z]\d{2}(\d{2})*$")
_AREA = re.compile(r"^[A-Za-z0-9-]+(/[A-Za-z0-9-]+)*$")
REPORTER_SIDE = (RecipientKind.COMMUNITY, RecipientKind.GRID_WORKER)
# tracking's escalation ladder names the level it reached; area paths are district/street/
# community/grid codes, so a level is a depth (``areas.depth``)
LEVEL_DEPTH: dict[str, int] = {Level.DISTRICT: 0, Level.STREET: 1, Level.COMMUNITY: 2}


@dataclass(frozen=True)
class Subscription:
    recipient_id: str
    event_types: tuple[str, ...]
    area_path: str | None = None  # the subtree (itself and below); None: anywhere
    department_id: str | None = None
    categories: tuple[str, ...] = ()  # codes; a 大类 (C01) covers its 小类 (C0101)
    priorities: tuple[str, ...] = ()
    id: int | None = None
    created_by: str | None = field(default=None, compare=False)

    def matches(self, n: CaseNotice) -> bool:
        return (
            n.kind.value in self.event_types
            and (self.area_path is None or areas.within(n.area_path, self.area_path))
            and (self.department_id is None or self.department_id == n.department_id)
            and (not self.categories or any(n.category.startswith(c) for c in self.categories))
            and (not self.priorities or n.priority in self.priorities)
        )


def validate_subscription(s: Subscription) -> Subscription:
    known = [k.value for k in NoticeKind]
    if not s.event_types:
        raise Invalid(
            "event_types：至少选择一种事件",
            "event_types: choose at least one event type",
            code="invalid_subscription",
        )
    for t in s.event_types:
        if t not in known:
            raise Invalid(
                f"event_types：不支持的事件“{t}”（可选：{'、'.join(known)}）",
                f"event_types: '{t}' is not an event notify announces (known: {', '.join(known)})",
                code="invalid_subscription",
            )
    if s.area_path is not None and not _AREA.match(s.area_path):
        raise Invalid(
            f"area_path：辖区路径“{s.area_path}”无效，应为以 / 连接的编码，如 YA/YA01",
            f"area_path: '{s.area_path}' is not codes joined by '/', e.g. YA/YA01",
            code="invalid_subscription",
        )
    for c in s.categories:
        if not _CATEGORY.match(c):
            raise Invalid(
                f"categories：分类编码“{c}”无效，应如 C01 或 C0101",
                f"categories: '{c}' is not a category code such as C01 or C0101",
                code="invalid_subscription",
            )
    for p in s.priorities:
        if p not in PRIORITIES:
            raise Invalid(
                f"priorities：紧急程度只能是 {' / '.join(PRIORITIES)}",
                f"priorities: each must be one of {', '.join(PRIORITIES)}",
                code="invalid_subscription",
            )
    if len(set(s.event_types)) != len(s.event_types):
        raise Invalid(
            "event_types：事件类型重复",
            "event_types: a type is listed twice",
            code="invalid_subscription",
        )
    return s


# What a recipient cannot mute: what asks it to act now (a dispatch nobody reads is a case
# nobody handles; an urging or an escalation is the last word before the next level).
MUST_HEAR: dict[RecipientKind, frozenset[NoticeKind]] = {
    RecipientKind.DEPARTMENT: frozenset({NoticeKind.DISPATCHED, NoticeKind.URGED}),
    RecipientKind.SUPERVISOR: frozenset(
        {NoticeKind.ESCALATED, NoticeKind.EXTENSION_REQUESTED, NoticeKind.PAUSE_REQUESTED}
    ),
    RecipientKind.COMMUNITY: frozenset({NoticeKind.ESCALATED}),
    RecipientKind.GRID_WORKER: frozenset(),
}
_DEPARTMENT_HEARS = (
    NoticeKind.DISPATCHED,
    NoticeKind.WARNING,
    NoticeKind.URGED,
    NoticeKind.EXTENSION_DECIDED,
    NoticeKind.PAUSE_DECIDED,
    NoticeKind.RESUMED,
)
_SUPERVISOR_DECIDES = (NoticeKind.EXTENSION_REQUESTED, NoticeKind.PAUSE_REQUESTED)


def check_mutes(kind: RecipientKind, muted: Iterable[str]) -> tuple[str, ...]:
    """The event types a recipient of ``kind`` opts out of, checked: known types, each once,
    none it must hear."""
    known = [k.value for k in NoticeKind]
    muted = tuple(muted)
    for t in muted:
        if t not in known:
            raise Invalid(
                f"muted_events：不支持的事件“{t}”（可选：{'、'.join(known)}）",
                f"muted_events: '{t}' is not an event notify announces (known: {', '.join(known)})",
                code="invalid_muted_events",
            )
    if len(set(muted)) != len(muted):
        raise Invalid(
            "muted_events：事件类型重复",
            "muted_events: a type is listed twice",
            code="invalid_muted_events",
        )
    must = sorted(k.value for k in MUST_HEAR[kind] if k.value in muted)
    if must:
        raise Invalid(
            f"muted_events：{'、'.join(must)} 需要该接收方立即处理，不能关闭",
            f"muted_events: a {kind.value} recipient must hear {', '.join(must)} "
            "(it asks for action now) and cannot mute it",
            code="cannot_mute",
        )
    return muted


def _muted(n: CaseNotice, r: Recipient) -> bool:
    return n.kind.value in r.preferences.muted and n.kind not in MUST_HEAR[r.kind]


def hears_by_default(n: CaseNotice, r: Recipient) -> bool:
    own_department = (
        r.kind is RecipientKind.DEPARTMENT
        and r.department_id is not None
        and r.department_id == n.department_id
    )
    in_area = r.area_path is not None and areas.within(n.area_path, r.area_path)
    if n.kind in _DEPARTMENT_HEARS:
        return own_department
    if n.kind in _SUPERVISOR_DECIDES:  # they approve or refuse it (批准/驳回)
        return r.kind is RecipientKind.SUPERVISOR and in_area
    if n.kind is NoticeKind.ESCALATED:  # 逐级上报: the desks of the level it has reached
        depth = LEVEL_DEPTH.get(n.level or "")
        if depth is None:
            return r.kind is RecipientKind.SUPERVISOR and in_area
        at_level = r.area_path is not None and areas.depth(r.area_path) == depth
        return (
            r.kind in (RecipientKind.SUPERVISOR, RecipientKind.COMMUNITY) and in_area and at_level
        )
    if n.kind is NoticeKind.OVERDUE:
        return own_department or (r.kind is RecipientKind.SUPERVISOR and in_area)
    if n.kind is NoticeKind.WHISTLED:
        escalated = n.level in (Level.STREET, Level.DISTRICT)
        return escalated and r.kind is RecipientKind.SUPERVISOR and in_area
    if n.kind in (NoticeKind.RESOLVED, NoticeKind.CLOSED):
        return r.kind in REPORTER_SIDE and in_area
    return False


def select_recipients(
    notice: CaseNotice, candidates: Iterable[Recipient], subscriptions: Iterable[Subscription] = ()
) -> list[Recipient]:
    """Everyone who hears ``notice``: by default (unless muted) or by a matching
    subscription; each once, in id order."""
    subscribed = {s.recipient_id for s in subscriptions if s.matches(notice)}
    chosen: dict[str, Recipient] = {}
    for r in candidates:
        if r.id in subscribed or (hears_by_default(notice, r) and not _muted(notice, r)):
            chosen.setdefault(r.id, r)
    return sorted(chosen.values(), key=lambda r: r.id)
