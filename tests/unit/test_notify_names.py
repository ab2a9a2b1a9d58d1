"""Messages name the place and the category (names, not codes), and fall back to the codes
when a name is not known; notify's copy of the names (``reference``) keeps what it has when
intake or dispatch is away."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from services.notify import domain, reference
from services.notify.config import Settings
from services.notify.domain import CaseNotice, NoticeKind, RecipientKind
from services.notify.domain.names import NO_NAMES, Names
from services.notify.reference import ReferenceNames
from shared import demo

CASE_ID = "7b0c6f5e-2a4b-4c1e-9d7a-0f3e8b1c2d3e"
GRID = "YA/YA01/YA0101/YA0101-03"
PLACE = "迎泽街道 › 桃园社区 › 桃园社区第3网格"
NAMES = Names(
    areas={a.code: a.name for a in demo.areas()},
    categories={code: name for code, name, _ in demo.CATEGORIES},
    parents={code: parent for code, _, parent in demo.CATEGORIES if parent},
)
NEW_TO_READER = (NoticeKind.DISPATCHED, NoticeKind.WHISTLED)


def notice(kind: NoticeKind, **kw) -> CaseNotice:
    """A notice with every field its kind may use, so each template says all it can."""
    base = {
        "kind": kind,
        "case_id": CASE_ID,
        "case_no": "YA20261122-0001",
        "category": "E0101",
        "area_path": GRID,
        "priority": "normal",
        "department_id": "cg",
        "department_name": "榆安区城市管理局",
        "assignment_id": "a-1",
        "role": "lead",
        "description": "楼下空地乱堆建筑垃圾",
        "clock": "resolve",
        "due_at": datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
        "level": "street",
        "result": "已清运",
        "note": "请今日办结",
        "count": 2,
        "reason": "需协调",
        "days": 3,
        "approved": True,
        "comment": "同意",
        "pause": "hang",
    }
    return CaseNotice(**{**base, **kw})


def texts(m: domain.Message) -> str:
    return "\n".join((m.title_zh, m.body_zh, m.title_en, m.body_en))


# --- the names themselves ----------------------------------------------------------------


def test_a_place_is_named_below_the_district():
    assert NAMES.place(GRID) == PLACE
    assert NAMES.place("YA/YA01") == "迎泽街道"
    assert NAMES.place("YA") == "榆安区"  # the district alone is its own name


def test_a_place_with_a_name_missing_reads_as_its_code_path():
    new_grid = "YA/YA01/YA0101/YA0101-90"  # added to intake after the last refresh
    assert NAMES.place(new_grid) is None and NAMES.place_or_path(new_grid) == new_grid
    assert NO_NAMES.place_or_path(GRID) == GRID


def test_a_category_is_named_with_its_major_class_where_asked():
    assert NAMES.category("E0101") == "乱堆物料"
    assert NAMES.category_in_full("E0101") == "事件·市容环境 › 乱堆物料"
    assert NAMES.category_in_full("E01") == "事件·市容环境"  # a 大类 has no 大类 above it
    assert NAMES.category("X9999") == NAMES.category_in_full("X9999") == "X9999"
    orphan = Names(categories={"E0101": "乱堆物料"}, parents={"E0101": "E01"})
    assert orphan.category_in_full("E0101") == "乱堆物料"  # its 大类's name unknown


# --- every template, with and without names ------------------------------------------------


@pytest.mark.parametrize("kind", list(NoticeKind))
@pytest.mark.parametrize("audience", [RecipientKind.DEPARTMENT, RecipientKind.SUPERVISOR])
def test_every_message_names_the_place_and_category_in_both_languages(kind, audience):
    m = domain.render(notice(kind), audience, names=NAMES)
    assert f"位置：{PLACE}。" in m.body_zh and f"Area: {PLACE}." in m.body_en
    category = "事件·市容环境 › 乱堆物料" if kind in NEW_TO_READER else "乱堆物料"
    assert f"（{category}）" in m.body_zh and f"({category})" in m.body_en
    assert "E0101" not in texts(m) and "YA01" not in texts(m)


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_without_names_every_message_still_reads_with_codes(kind):
    m = domain.render(notice(kind), RecipientKind.SUPERVISOR, names=NO_NAMES)
    assert f"位置：{GRID}。" in m.body_zh and f"Area: {GRID}." in m.body_en
    assert "（E0101）" in m.body_zh and "(E0101)" in m.body_en
    assert domain.render(notice(kind), RecipientKind.SUPERVISOR) == m  # the default


def test_a_known_category_in_an_unnamed_place_and_the_address_beside_the_place():
    partly = Names(areas={}, categories=NAMES.categories, parents=NAMES.parents)
    m = domain.render(notice(NoticeKind.URGED), RecipientKind.DEPARTMENT, names=partly)
    assert f"位置：{GRID}。" in m.body_zh and "（乱堆物料）" in m.body_zh
    whistled = notice(NoticeKind.WHISTLED, place="桃园小区5号楼2单元")
    m = domain.render(whistled, RecipientKind.SUPERVISOR, names=NAMES)
    assert f"位置：{PLACE}（桃园小区5号楼2单元）。" in m.body_zh
    assert f"Area: {PLACE} (桃园小区5号楼2单元)." in m.body_en


def test_the_dispatch_a_clerk_reads_on_a_robot():
    m = domain.render(
        notice(NoticeKind.DISPATCHED),
        RecipientKind.DEPARTMENT,
        "https://whistle.example.gov.cn",
        department_id="cg",
        names=NAMES,
    )
    assert m.body_zh == (
        "【派单】案件YA20261122-0001（事件·市容环境 › 乱堆物料）已派至榆安区城市管理局（主办），"
        f"请及时签收报到。位置：{PLACE}。问题：楼下空地乱堆建筑垃圾。"
        "详情：https://whistle.example.gov.cn/assignments/a-1"
    )


# --- what machines and SMS templates receive ----------------------------------------------


def test_sms_parameters_are_names_with_the_codes_beside_them():
    n = notice(NoticeKind.OVERDUE)
    named = domain.facts(n, "https://w.example.cn/cases/x", NAMES)
    assert (named["category"], named["category_code"]) == ("乱堆物料", "E0101")
    assert (named["area"], named["area_path"], named["place"]) == (PLACE, GRID, PLACE)
    with_address = domain.facts(notice(NoticeKind.WHISTLED, place="桃园小区5号楼"), "", NAMES)
    assert with_address["place"] == "桃园小区5号楼" and with_address["area"] == PLACE
    bare = domain.facts(n, "https://w.example.cn/cases/x")
    assert (bare["category"], bare["area"], bare["place"]) == ("E0101", GRID, GRID)


def test_a_webhook_body_carries_codes_and_their_names_or_null():
    at = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    n = notice(NoticeKind.DISPATCHED)
    m = domain.render(n, RecipientKind.DEPARTMENT, names=NAMES)
    data = domain.webhook_body(
        n, m, event_id="e-1", recipient_id="duty-cg", occurred_at=at, names=NAMES
    )["data"]
    assert (data["category"], data["category_name"]) == ("E0101", "乱堆物料")
    assert (data["area_path"], data["area_name"]) == (GRID, PLACE)
    assert data["text"]["zh"] == m.body_zh and data["facts"]["category"] == "乱堆物料"
    bare = domain.webhook_body(n, m, event_id="e-1", recipient_id="duty-cg", occurred_at=at)
    assert bare["data"]["category_name"] is None and bare["data"]["area_name"] is None


# --- notify's copy of the names ------------------------------------------------------------

FEATURES = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": a.code,
            "geometry": None,
            "properties": {
                "code": a.code,
                "name": a.name,
                "level": a.level,
                "parent_code": a.parent,
                "path": a.path,
            },
        }
        for a in demo.areas()
    ],
}
CATEGORIES = [
    {
        "code": c,
        "name": n,
        "parent_code": p,
        "category_class": "event",
        "class_zh": "事件",
        "department_kind": None,
        "department_kind_zh": None,
    }
    for c, n, p in demo.CATEGORIES
]


class Owners:
    """intake and dispatch as notify sees them over HTTP; either may be down (503)."""

    def __init__(self) -> None:
        self.intake_up = self.dispatch_up = True
        self.categories = CATEGORIES
        self.asked: list[httpx.URL] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request.url)
        if request.url.host == "intake" and request.url.path == "/areas/features":
            return httpx.Response(200, json=FEATURES) if self.intake_up else httpx.Response(503)
        if request.url.host == "dispatch" and request.url.path == "/categories":
            return (
                httpx.Response(200, content=json.dumps(self.categories).encode())
                if self.dispatch_up
                else httpx.Response(503)
            )
        return httpx.Response(404)


async def test_the_copy_loads_both_documents_and_keeps_what_it_has_when_an_owner_is_away():
    owners = Owners()
    ref = ReferenceNames("http://intake/", "http://dispatch", area_root="YA")
    assert ref.known == NO_NAMES
    async with httpx.AsyncClient(transport=httpx.MockTransport(owners)) as client:
        await ref.refresh(client)
        assert ref.known == NAMES and await ref.names() == NAMES
        assert {str(u) for u in owners.asked} == {
            "http://intake/areas/features?root=YA",
            "http://dispatch/categories",
        }
        # intake away: its names stay as they were; dispatch's renamed category comes in
        owners.intake_up = False
        owners.categories = [
            {**c, "name": "乱堆物料（含建筑垃圾）"} if c["code"] == "E0101" else c
            for c in CATEGORIES
        ]
        with pytest.raises(httpx.HTTPStatusError):
            await ref.refresh(client)
        assert ref.known.place(GRID) == PLACE
        assert ref.known.category("E0101") == "乱堆物料（含建筑垃圾）"
        # both away: the last good copy stays
        owners.dispatch_up = False
        with pytest.raises(httpx.HTTPStatusError):
            await ref.refresh(client)
        assert ref.known.category("E0101") == "乱堆物料（含建筑垃圾）"


async def test_before_any_fetch_messages_use_codes():
    owners = Owners()
    owners.intake_up = owners.dispatch_up = False
    ref = ReferenceNames("http://intake", "http://dispatch")
    async with httpx.AsyncClient(transport=httpx.MockTransport(owners)) as client:
        with pytest.raises(httpx.HTTPStatusError):
            await ref.refresh(client)
    assert ref.known == NO_NAMES
    assert [str(u) for u in owners.asked if u.host == "intake"] == [
        "http://intake/areas/features"
    ]  # no root: every district


async def test_the_first_messages_wait_for_the_first_fetch_a_few_seconds_at_most(monkeypatch):
    owners = Owners()
    ref = ReferenceNames("http://intake", "http://dispatch")
    waiting = asyncio.create_task(ref.names())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the first fetch is on its way: wait for it
    async with httpx.AsyncClient(transport=httpx.MockTransport(owners)) as client:
        await ref.refresh(client)
    assert await waiting == NAMES
    monkeypatch.setattr(reference, "FIRST_LOAD_WAIT_SECONDS", 0.1)
    never_fetched = ReferenceNames("http://intake", "http://dispatch")
    assert await asyncio.wait_for(never_fetched.names(), 2) == NO_NAMES  # codes, not a wait


def test_reference_settings_default_to_the_local_services_and_the_whole_tree():
    s = Settings(environment="test", database_url="postgresql://x@127.0.0.1:1/x")
    assert (s.intake_url, s.dispatch_url) == ("http://localhost:8101", "http://localhost:8102")
    assert s.reference_area_root == "" and s.reference_refresh_seconds == 300
    assert (
        Settings(
            environment="test",
            database_url="postgresql://x@127.0.0.1:1/x",
            reference_area_root="YA/YA01",
        ).reference_area_root
        == "YA/YA01"
    )
    for bad in ("YA/", "/YA", "YA//YA01", "YA%"):
        with pytest.raises(ValidationError):
            Settings(
                environment="test",
                database_url="postgresql://x@127.0.0.1:1/x",
                reference_area_root=bad,
            )
