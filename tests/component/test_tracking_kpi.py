"""Tracking's KPIs (考核) and the case history export, on real PostgreSQL and the real broker.

A small data set of March 2026 is published as dispatch's and intake's events with known
timestamps; every figure below was computed by hand from it. Times are Beijing time in the
demo calendar (08:30–12:00, 13:30–17:30 Mon–Fri); day 0 is Monday 2026-03-02. E0101 normal:
sign-for 2 working hours, resolution 3 working days; C0501 urgent (the lift): sign-for 15 min,
resolution 12 h. Every deadline is long past by now (the service's clock is real), so "overdue
now" is fixed.

| # | department | grid | what happened |
| - | --- | --- | --- |
| 1 | cg | YA0101-01 | dispatched d0 09:00, signed 10:00 (due 11:00), resolved d1 09:00 (due d3 09:00), rated 5 |
| 2a | cg | YA0102-01 | d1 09:00, signed 12:00 (late, due 11:00), resolved d2 09:00, sent back (返工) d2 10:00 |
| 2b | cg | YA0102-01 | rework d2 10:30, signed 11:00 (due 14:00), resolved d4 10:00 (due d7 10:30), rated 4 |
| 3a | cg | YA0201-01 | d2 09:00, rejected (退单) 09:30 |
| 3b | zj | YA0201-01 | d2 09:35, never signed for: overdue |
| 4 | zj | YA0101-02 | d0 14:00, signed 15:00, +2 days approved (one more refused), resolved d7 13:00 (due d7 14:00), rated 2 |
| 5 | zj | YA0101-01 | d3 09:00, signed 10:30, never resolved (due d8 09:00): overdue |
| 6 | xf | YA0201-02 | lift, d0 10:00, signed 10:20 (late, due 10:15), resolved 12:00 (due 22:00) |
| 7a | xf | YA0102-02 | d4 09:00, handed on (转办) 09:10 to cg |
| 7b | cg | YA0102-02 | d4 09:10, signed 09:30, never resolved (due d9 09:10): overdue |
| 8 | cg | YA0101-01 | dispatched 27 Feb: outside March |
| 9 | cg | YA0101-01 | d8 09:00, signed 09:30, resolved 15:00, rated 5, closed |
| 10 | cg + zj | YA0101-03 | joint, d9 09:00: cg signed 09:30 and resolved 11:00; zj (co) signed 10:00, never reported; closed 16:00 — zj is not overdue |
| 11 | zj | YA0101-01 | April: 6 Apr 09:00, signed 09:30, hung up (挂账) 10:00 and still paused: not overdue |
| 12 | zj | YA0101-01 | April: 6 Apr 09:00, signed 09:30, never resolved: overdue |

Dispatch's events are published first and intake's once tracking has them (across topics the
order is not guaranteed: a closing heard before its case's dispatch would start clocks anew).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime

import pytest
from aiokafka import AIOKafkaProducer

from services.tracking.demo import DEMO_THRESHOLDS
from services.tracking.main import create_app
from shared.auth import Role
from shared.contract import (
    CaseClosed,
    CaseDispatched,
    CaseExtensionDecided,
    CasePauseDecided,
    CaseRated,
    CaseRejected,
    CaseResolved,
    CaseReworkRequested,
    CaseSignedFor,
    CaseTransferred,
    PauseKind,
    Priority,
    new_event,
)
from tests.component import tracking_fixtures
from tests.component.tracking_fixtures import CN, at
from tests.helpers import as_user, bearer, eventually, fetchval, running_app

NAMES = {"cg": "榆安区城市管理局", "zj": "榆安区住房和城乡建设局", "xf": "榆安区消防救援大队"}
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def grid(code: str) -> str:
    street, community = code[:4], code[:6]
    return f"YA/{street}/{community}/{code}"


class Case:
    """One case's events, in the order they happened."""

    def __init__(self, n: int, grid_code: str, *, lift: bool = False) -> None:
        self.id = uuid.uuid4()
        self.facts = {
            "case_no": f"YA20260302-{n:04d}",
            "area_path": grid(grid_code),
            "category": "C0501" if lift else "E0101",
            "priority": Priority.URGENT if lift else Priority.NORMAL,
        }
        self.events: list = []

    def _add(self, producer: str, payload, when: datetime) -> None:
        self.events.append(new_event(payload, case_id=self.id, producer=producer, occurred_at=when))

    def dispatch(
        self,
        dept: str,
        when: datetime,
        *,
        rework: bool = False,
        basis: str = "rule",
        role: str = "lead",
    ) -> uuid.UUID:
        a = uuid.uuid4()
        self._add(
            "dispatch",
            CaseDispatched(
                **self.facts,
                assignment_id=a,
                department_id=dept,
                department_name=NAMES[dept],
                role=role,
                rule_id=1,
                reason="test",
                description="楼道堆物",
                rework=rework,
                basis=basis,
            ),
            when,
        )
        return a

    def act(self, cls, a: uuid.UUID, dept: str, when: datetime, **fields) -> None:
        self._add(
            "dispatch", cls(**self.facts, assignment_id=a, department_id=dept, **fields), when
        )

    def intake(self, cls, when: datetime, **fields) -> None:
        self._add("intake", cls(**self.facts, **fields), when)


def data_set() -> list[Case]:
    c1 = Case(1, "YA0101-01")
    a = c1.dispatch("cg", at(0, 9))
    c1.act(CaseSignedFor, a, "cg", at(0, 10))
    c1.act(CaseResolved, a, "cg", at(1, 9), result="已清理")
    c1.intake(CaseRated, at(1, 10), score=5, channel="link")

    c2 = Case(2, "YA0102-01")
    a = c2.dispatch("cg", at(1, 9))
    c2.act(CaseSignedFor, a, "cg", at(1, 12))
    c2.act(CaseResolved, a, "cg", at(2, 9), result="已清理")
    c2.intake(CaseReworkRequested, at(2, 10), reason="现场仍有杂物", departments=["cg"])
    b = c2.dispatch("cg", at(2, 10, 30), rework=True, basis="rework")
    c2.act(CaseSignedFor, b, "cg", at(2, 11))
    c2.act(CaseResolved, b, "cg", at(4, 10), result="已彻底清理")
    c2.intake(CaseRated, at(4, 12), score=4, channel="grid_worker", comment="满意")

    c3 = Case(3, "YA0201-01")
    a = c3.dispatch("cg", at(2, 9))
    c3.act(CaseRejected, a, "cg", at(2, 9, 30), reason="不属于本部门")
    c3.dispatch("zj", at(2, 9, 35))

    c4 = Case(4, "YA0101-02")
    a = c4.dispatch("zj", at(0, 14))
    c4.act(CaseSignedFor, a, "zj", at(0, 15))
    c4.act(CaseExtensionDecided, a, "zj", at(1, 10), request_id=uuid.uuid4(), approved=True, days=2)
    c4.act(
        CaseExtensionDecided,
        a,
        "zj",
        at(2, 10),
        request_id=uuid.uuid4(),
        approved=False,
        days=0,
        comment="理由不足",
    )
    c4.act(CaseResolved, a, "zj", at(7, 13), result="已修复")
    c4.intake(CaseRated, at(7, 14), score=2, channel="link")

    c5 = Case(5, "YA0101-01")
    a = c5.dispatch("zj", at(3, 9))
    c5.act(CaseSignedFor, a, "zj", at(3, 10, 30))

    c6 = Case(6, "YA0201-02", lift=True)
    a = c6.dispatch("xf", at(0, 10))
    c6.act(CaseSignedFor, a, "xf", at(0, 10, 20))
    c6.act(CaseResolved, a, "xf", at(0, 12), result="已解困")

    c7 = Case(7, "YA0102-02")
    a = c7.dispatch("xf", at(4, 9))
    c7.act(CaseTransferred, a, "xf", at(4, 9, 10), to_department_id="cg", reason="属城管职责")
    b = c7.dispatch("cg", at(4, 9, 10), basis="transfer")
    c7.act(CaseSignedFor, b, "cg", at(4, 9, 30))

    c8 = Case(8, "YA0101-01")
    a = c8.dispatch("cg", datetime(2026, 2, 27, 9, tzinfo=CN))
    c8.act(CaseSignedFor, a, "cg", datetime(2026, 2, 27, 9, 30, tzinfo=CN))

    c9 = Case(9, "YA0101-01")
    a = c9.dispatch("cg", at(8, 9))
    c9.act(CaseSignedFor, a, "cg", at(8, 9, 30))
    c9.act(CaseResolved, a, "cg", at(8, 15), result="已清理")
    c9.intake(CaseRated, at(8, 15, 30), score=5, channel="link")
    c9.intake(CaseClosed, at(8, 16), note="现场核查通过")

    c10 = Case(10, "YA0101-03")
    a = c10.dispatch("cg", at(9, 9))
    b = c10.dispatch("zj", at(9, 9), role="co")
    c10.act(CaseSignedFor, a, "cg", at(9, 9, 30))
    c10.act(CaseSignedFor, b, "zj", at(9, 10))
    c10.act(CaseResolved, a, "cg", at(9, 11), result="已清理", case_resolved=False)
    c10.intake(CaseClosed, at(9, 16), note="社区核查通过")

    c11 = Case(11, "YA0101-01")
    a = c11.dispatch("zj", datetime(2026, 4, 6, 9, tzinfo=CN))
    c11.act(CaseSignedFor, a, "zj", datetime(2026, 4, 6, 9, 30, tzinfo=CN))
    c11.act(
        CasePauseDecided,
        a,
        "zj",
        datetime(2026, 4, 6, 10, tzinfo=CN),
        request_id=uuid.uuid4(),
        kind=PauseKind.HANG,
        reason="待业主委员会表决",
        approved=True,
    )
    c12 = Case(12, "YA0101-01")
    a = c12.dispatch("zj", datetime(2026, 4, 6, 9, tzinfo=CN))
    c12.act(CaseSignedFor, a, "zj", datetime(2026, 4, 6, 9, 30, tzinfo=CN))
    return [c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12]


@pytest.fixture(scope="module")
async def service(pg_server, kafka_server):
    settings = await tracking_fixtures.service_settings(pg_server, kafka_server)
    dsn = settings.database_url.get_secret_value()
    cases = data_set()
    events = [e for c in cases for e in c.events]
    async with running_app(create_app(settings)) as client:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
        await producer.start()
        try:
            for producer_name in ("dispatch", "intake"):
                batch = [e for e in events if e.producer == producer_name]
                for e in batch:
                    await producer.send_and_wait(e.topic, e.to_bytes(), key=str(e.case_id).encode())
                ids = [e.event_id for e in batch]

                async def recorded(ids=ids):
                    return await fetchval(
                        dsn,
                        "SELECT count(*) FROM case_events WHERE event_id = ANY($1::uuid[])",
                        ids,
                    ) == len(ids)

                await eventually(
                    recorded, timeout=60, message=f"tracking recorded {producer_name}'s events"
                )
        finally:
            await producer.stop()

        async def timers_settled():  # March's alerts all fired: timelines stop moving
            return (
                await fetchval(
                    dsn, "SELECT count(*) FROM timers WHERE state = 'pending' AND due_at <= now()"
                )
                == 0
            )

        await eventually(timers_settled, timeout=60, message="due timers fired")
        yield client, dsn, cases


DISTRICT = bearer(Role.DISTRICT)
H = 3600


def ok(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()


def problem(resp, status):
    assert resp.status_code == status, resp.text
    return resp.json()["error"]


def figures(row: dict) -> tuple:
    return (
        row["received"],
        row["signed_for_on_time"],
        row["resolved"],
        row["resolved_on_time"],
        row["overdue_now"],
        row["reworked"],
        row["rejections"],
        row["extensions"],
        row["rated"],
        row["satisfied"],
    )


def rates(row: dict) -> tuple:
    return tuple(
        (row[r]["numerator"], row[r]["denominator"])
        for r in (
            "response_rate",
            "resolution_rate",
            "satisfaction_rate",
            "on_time_rate",
            "rework_rate",
        )
    )


# --- the figures --------------------------------------------------------------------------------


async def test_department_figures_match_the_hand_computation(service):
    client, _, _ = service
    body = ok(await client.get("/kpi/departments", params=MARCH, headers=DISTRICT))
    units = {u["unit"]: u for u in body["units"]}
    assert list(units) == ["cg", "xf", "zj"]
    assert units["cg"]["name"] == NAMES["cg"]
    # cg: 1, 2a, 2b, 3a, 7b, 9, 10 (8 is February). On time: 1, 2b, 7b, 9, 10 (2a late, 3a
    # never). Resolved 1, 2a, 2b, 9, 10, all by their deadlines. Overdue now: 7b
    # (resolution). 2a reworked, 3a rejected. Rated: 1 (5), 2b (4), 9 (5) — 2a's result was
    # sent back, so the case's rating is 2b's. Handling 24 + 24 + 47.5 + 6 + 2 = 103.5 h / 5.
    assert figures(units["cg"]) == (7, 5, 5, 5, 1, 1, 1, 0, 3, 3)
    assert rates(units["cg"]) == ((5, 7), (5, 7), (3, 3), (5, 5), (1, 5))
    assert units["cg"]["response_rate"]["label"] == "71.4%"
    assert units["cg"]["average_handling_hours"] == pytest.approx(20.7)
    assert units["cg"]["average_score"] == pytest.approx(14 / 3, abs=0.01)
    # zj: 3b, 4, 5, 10. On time: 4, 5, 10. Resolved 4, on time only thanks to its 2-day
    # extension (d3 14:00 → d7 14:00; the refused one counts for nothing). Overdue: 3b
    # (sign-for), 5 (resolution) — not 10: its case was closed. Rated 2: not satisfied.
    # Handling d0 14:00 → d7 13:00 = 167 h.
    assert figures(units["zj"]) == (4, 3, 1, 1, 2, 0, 0, 1, 1, 0)
    assert rates(units["zj"]) == ((3, 4), (1, 4), (0, 1), (1, 1), (0, 1))
    assert units["zj"]["average_handling_hours"] == 167
    # xf: 6 (signed 5 minutes late, resolved in 2 h) and 7a, handed on — not overdue.
    assert figures(units["xf"]) == (2, 0, 1, 1, 0, 0, 0, 0, 0, 0)
    assert units["xf"]["satisfaction_rate"] == {
        "numerator": 0,
        "denominator": 0,
        "value": None,
        "label": "—",
    }
    assert units["xf"]["average_handling_hours"] == 2
    total = body["total"]
    assert figures(total) == (13, 8, 7, 7, 3, 1, 1, 1, 4, 3)
    assert total["average_handling_hours"] == pytest.approx(272.5 / 7, abs=0.01)
    assert total["average_score"] == 4.0
    assert datetime.fromisoformat(body["from"]) == datetime(2026, 3, 1, tzinfo=CN)
    assert datetime.fromisoformat(body["to"]) == datetime(2026, 4, 1, tzinfo=CN)


async def test_a_period_given_in_times_excludes_its_end(service):
    client, _, _ = service
    # Monday 2 March until 14:00: 1 (cg, 09:00) and 6 (xf, 10:00); 4 (zj, 14:00) is excluded.
    body = ok(
        await client.get(
            "/kpi/departments",
            headers=DISTRICT,
            params={"from": "2026-03-02", "to": "2026-03-02T14:00:00+08:00"},
        )
    )
    assert {u["unit"]: u["received"] for u in body["units"]} == {"cg": 1, "xf": 1}
    # the whole Monday counts with a date
    body = ok(
        await client.get(
            "/kpi/departments", headers=DISTRICT, params={"from": "2026-03-02", "to": "2026-03-02"}
        )
    )
    assert {u["unit"]: u["received"] for u in body["units"]} == {"cg": 1, "xf": 1, "zj": 1}
    # April: 11 stands still in its pause (挂账), 12 is late
    body = ok(
        await client.get(
            "/kpi/departments", headers=DISTRICT, params={"from": "2026-04-01", "to": "2026-04-30"}
        )
    )
    assert [(u["unit"], figures(u)) for u in body["units"]] == [
        ("zj", (2, 2, 0, 0, 1, 0, 0, 0, 0, 0))
    ]
    # February: case 8 alone, signed for on time
    body = ok(
        await client.get(
            "/kpi/departments", headers=DISTRICT, params={"from": "2026-02-01", "to": "2026-02-28"}
        )
    )
    assert [(u["unit"], u["received"], u["signed_for_on_time"]) for u in body["units"]] == [
        ("cg", 1, 1)
    ]


async def test_area_figures_per_street_and_per_community(service):
    client, _, _ = service
    body = ok(await client.get("/kpi/areas", headers=DISTRICT, params={**MARCH, "level": "street"}))
    units = {u["unit"]: u for u in body["units"]}
    assert list(units) == ["YA/YA01", "YA/YA02"]
    # YA01: 1, 2a, 2b, 4, 5, 7a, 7b, 9, 10 ×2; on time all but 2a and 7a; resolved 1, 2a,
    # 2b, 4, 9, cg's 10; overdue 5 and 7b; ratings 5, 4, 2, 5.
    assert figures(units["YA/YA01"]) == (10, 8, 6, 6, 2, 1, 0, 1, 4, 3)
    # YA02: 3a (rejected), 3b (overdue), 6 (late sign-for, resolved on time)
    assert figures(units["YA/YA02"]) == (3, 0, 1, 1, 1, 0, 1, 0, 0, 0)
    assert figures(body["total"]) == (13, 8, 7, 7, 3, 1, 1, 1, 4, 3)
    # default level: one below the area asked for
    body = ok(await client.get("/kpi/areas", headers=DISTRICT, params={**MARCH, "area": "YA/YA01"}))
    assert {u["unit"]: u["received"] for u in body["units"]} == {
        "YA/YA01/YA0101": 6,
        "YA/YA01/YA0102": 4,
    }
    body = ok(
        await client.get(
            "/kpi/areas",
            headers=DISTRICT,
            params={**MARCH, "area": "YA/YA01/YA0101", "level": "grid"},
        )
    )
    assert {u["unit"]: u["received"] for u in body["units"]} == {
        "YA/YA01/YA0101/YA0101-01": 3,
        "YA/YA01/YA0101/YA0101-02": 1,
        "YA/YA01/YA0101/YA0101-03": 2,
    }


async def test_ranking_and_the_red_black_list_by_thresholds_as_data(service):
    client, _, _ = service
    admin = bearer(Role.ADMIN)
    seeded = ok(
        await client.get("/kpi/thresholds", headers=bearer(Role.DEPARTMENT, department_id="cg"))
    )
    assert seeded["thresholds"]["min_received"] == DEMO_THRESHOLDS["min_received"]
    assert seeded["created_by"] == "demo"
    mine = {
        "min_received": 3,
        "red": [["response_rate", ">=", 0.6], ["satisfaction_rate", ">=", 0.9]],
        "black": [["response_rate", "<", 0.5], ["overdue_now", ">=", 2]],
    }
    put = ok(await client.put("/kpi/thresholds", json=mine, headers=admin))
    assert put["revision"] > seeded["revision"] and put["created_by"] == "test-admin"
    try:
        body = ok(await client.get("/kpi/ranking", params=MARCH, headers=DISTRICT))
        # zj answers 3/4 on time, cg 5/7; xf has only 2 assignments: too few to judge
        # (min_received 3). cg (5/7 on time, 3/3 satisfied) is red; zj (2 overdue) black.
        assert [(r["position"], r["kpi"]["unit"]) for r in body["ranking"]] == [
            (1, "zj"),
            (2, "cg"),
        ]
        assert body["by"] == ["response_rate", "resolution_rate", "satisfaction_rate"]
        assert [(x["unit"], x["name"]) for x in body["red"]] == [("cg", NAMES["cg"])]
        assert [(x["unit"], x["reasons"]) for x in body["black"]] == [("zj", ["当前超时数 >= 2"])]
        assert body["thresholds"]["min_received"] == 3
        # fewest overdue first: cg (1) before zj (2)
        body = ok(
            await client.get(
                "/kpi/ranking",
                headers=DISTRICT,
                params={**MARCH, "by": "overdue_now,response_rate"},
            )
        )
        assert [(r["position"], r["kpi"]["unit"]) for r in body["ranking"]] == [
            (1, "cg"),
            (2, "zj"),
        ]
        # areas: YA01 answers 8/10 on time but has 2 overdue (and 3/4 satisfied: not red);
        # YA02 answers 0/3 on time
        body = ok(
            await client.get(
                "/kpi/ranking",
                headers=DISTRICT,
                params={**MARCH, "unit": "area", "level": "street"},
            )
        )
        assert [r["kpi"]["unit"] for r in body["ranking"]] == ["YA/YA01", "YA/YA02"]
        assert body["red"] == []
        assert [(x["unit"], x["reasons"]) for x in body["black"]] == [
            ("YA/YA01", ["当前超时数 >= 2"]),
            ("YA/YA02", ["响应率 < 50%"]),
        ]
    finally:
        ok(await client.put("/kpi/thresholds", json=DEMO_THRESHOLDS, headers=admin))


async def test_invalid_thresholds_are_refused_and_change_nothing(service):
    client, _, _ = service
    admin = bearer(Role.ADMIN)
    before = ok(await client.get("/kpi/thresholds", headers=DISTRICT))
    bad = {
        "a rate above 1": ({"red": [["response_rate", ">=", 95]]}, "red[0][2]"),
        "unknown metric": ({"black": [["speed", "<", 1]]}, "black[0][0]"),
        "unknown operator": ({"black": [["rejections", "=>", 3]]}, "black[0][1]"),
        "no criterion": ({"min_received": 3}, "red"),
        "typo": ({"min_recieved": 3, "red": [["response_rate", ">=", 0.9]]}, "min_recieved"),
        "zero minimum": (
            {"min_received": 0, "red": [["response_rate", ">=", 0.9]]},
            "min_received",
        ),
    }
    for why, (body, field) in bad.items():
        err = problem(await client.put("/kpi/thresholds", json=body, headers=admin), 422)
        assert err["code"] == "invalid_thresholds" and err["message"].startswith(field), (why, err)
    en = await client.put(
        "/kpi/thresholds", json=bad["a rate above 1"][0], headers={**admin, "Accept-Language": "en"}
    )
    assert "a rate threshold must be between 0 and 1" in en.json()["error"]["message"]
    assert (
        problem(
            await client.put(
                "/kpi/thresholds", json=DEMO_THRESHOLDS, headers=as_user("supervisor")
            ),
            403,
        )["code"]
        == "role_not_allowed"
    )
    assert ok(await client.get("/kpi/thresholds", headers=DISTRICT)) == before


async def test_bad_queries_are_refused_with_the_parameter_named(service):
    client, _, _ = service
    cases = [
        ({"from": "2026-03-31", "to": "2026-03-01"}, 422, "invalid_period", "to："),
        (
            {"from": "2026-03-01T10:00:00+08:00", "to": "2026-03-01T10:00:00+08:00"},
            422,
            "invalid_period",
            "to：",
        ),
        ({"from": "2025-01-01", "to": "2026-03-31"}, 422, "period_too_long", "to："),
        ({"from": "2026-03-01T08:00:00", "to": "2026-03-31"}, 422, "invalid_period", "from："),
        ({"from": "2026-13-01", "to": "2026-03-31"}, 422, "invalid_period", "from："),
        ({**MARCH, "level": "town"}, 422, "invalid_level", "level："),
        ({**MARCH, "area": "YA/YA01/YA0101", "level": "street"}, 422, "invalid_level", "level："),
        ({**MARCH, "area": "YA//YA01"}, 422, "invalid_area", "area："),
        ({**MARCH, "area": "YA/YA09"}, 404, "area_not_found", "area："),
        ({**MARCH, "formt": "csv"}, 422, "unknown_parameter", "formt："),
    ]
    for params, status, code, head in cases:
        err = problem(await client.get("/kpi/areas", params=params, headers=DISTRICT), status)
        assert err["code"] == code and err["message"].startswith(head), (params, err)
    err = problem(
        await client.get(
            "/kpi/areas", params=cases[0][0], headers={**DISTRICT, "Accept-Language": "en"}
        ),
        422,
    )
    assert err["message"] == "to: the period must end after it starts"
    err = problem(
        await client.get("/kpi/ranking", params={**MARCH, "by": "speed"}, headers=DISTRICT), 422
    )
    assert err["code"] == "invalid_metric" and err["message"].startswith("by：未知指标“speed”")
    assert (
        problem(
            await client.get("/kpi/departments", params={"from": "2026-03-01"}, headers=DISTRICT),
            422,
        )["code"]
        == "validation_error"
    )


async def test_a_period_at_the_ends_of_the_calendar_is_refused_not_a_server_error(service):
    client, _, _ = service
    # the day after 9999-12-31, or 0001-01-01 00:00 Beijing time in UTC, is no datetime
    for params in (
        {"from": "9999-12-01", "to": "9999-12-31"},
        {"from": "0001-01-01", "to": "0001-01-31"},
        {"from": "9999-12-01", "to": "9999-12-31T23:00:00-08:00"},
    ):
        for path in ("/kpi/departments", "/kpi/areas", "/kpi/ranking"):
            err = problem(await client.get(path, params=params, headers=DISTRICT), 422)
            assert err["code"] == "invalid_period", (path, params)
            assert err["message"].startswith(("from：", "to：")), err


async def test_each_caller_sees_only_its_scope(service):
    client, _, _ = service
    # 桃园社区 YA0101: cases 1, 4, 5, 9, 10 — cg's 1, 9, 10 and zj's 4, 5, 10
    community = bearer(Role.COMMUNITY, "YA/YA01/YA0101")
    body = ok(await client.get("/kpi/departments", params=MARCH, headers=community))
    assert {u["unit"]: figures(u) for u in body["units"]} == {
        "cg": (3, 3, 3, 3, 0, 0, 0, 0, 2, 2),
        "zj": (3, 3, 1, 1, 1, 0, 0, 1, 1, 0),
    }
    assert (
        problem(
            await client.get(
                "/kpi/departments", params={**MARCH, "area": "YA/YA02"}, headers=community
            ),
            403,
        )["code"]
        == "out_of_scope"
    )
    assert (
        problem(
            await client.get("/kpi/areas", params={**MARCH, "level": "street"}, headers=community),
            422,
        )["code"]
        == "invalid_level"
    )
    # a street supervisor of YA02: its cases 3 and 6 only
    sup = bearer(Role.SUPERVISOR, "YA/YA02")
    body = ok(
        await client.get(
            "/kpi/ranking", params={**MARCH, "unit": "area", "level": "community"}, headers=sup
        )
    )
    assert [r["kpi"]["unit"] for r in body["ranking"]] == []  # 3 assignments < min_received 5
    body = ok(await client.get("/kpi/areas", params=MARCH, headers=sup))
    assert {u["unit"]: u["received"] for u in body["units"]} == {"YA/YA02/YA0201": 3}
    # a department sees its own figures only, wherever its cases are; never the ranking
    zj = bearer(Role.DEPARTMENT, department_id="zj")
    body = ok(await client.get("/kpi/departments", params=MARCH, headers=zj))
    assert [(u["unit"], figures(u)) for u in body["units"]] == [
        ("zj", (4, 3, 1, 1, 2, 0, 0, 1, 1, 0))
    ]
    body = ok(await client.get("/kpi/areas", params={**MARCH, "level": "street"}, headers=zj))
    assert {u["unit"]: u["received"] for u in body["units"]} == {"YA/YA01": 3, "YA/YA02": 1}
    assert (
        problem(await client.get("/kpi/ranking", params=MARCH, headers=zj), 403)["code"]
        == "role_not_allowed"
    )
    assert problem(
        await client.get(
            "/kpi/departments",
            params=MARCH,
            headers=bearer(Role.GRID_WORKER, grid("YA0101-01"), grids=(grid("YA0101-01"),)),
        ),
        403,
    )


async def test_the_kpi_table_as_csv_for_excel(service):
    client, _, _ = service
    resp = await client.get("/kpi/departments", params={**MARCH, "format": "csv"}, headers=DISTRICT)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"] == (
        'attachment; filename="kpi-departments-20260301-20260401.csv"'
    )
    assert resp.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["部门", "名称", "受理量", "按时签收数"]
    by_unit = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert list(by_unit) == ["cg", "xf", "zj", "total"]
    assert (by_unit["cg"]["名称"], by_unit["cg"]["受理量"], by_unit["cg"]["响应率"]) == (
        NAMES["cg"],
        "7",
        "71.4%",
    )
    assert by_unit["xf"]["满意率"] == "—"
    assert (by_unit["total"]["名称"], by_unit["total"]["当前超时数"]) == ("合计", "3")


# --- a case's history as a file -----------------------------------------------------------------


async def test_the_json_export_is_the_timeline_as_a_file(service):
    client, _, cases = service
    case = cases[1]  # rework: two assignments of cg
    timeline = ok(await client.get(f"/cases/{case.id}/timeline", headers=DISTRICT))
    for params in ({}, {"format": "json"}):
        resp = await client.get(f"/cases/{case.id}/history", params=params, headers=DISTRICT)
        assert resp.status_code == 200, resp.text
        assert resp.json() == timeline
        assert resp.headers["content-disposition"] == (
            'attachment; filename="YA20260302-0002-history.json"'
        )


async def test_the_csv_export_has_one_row_per_event_and_opens_in_excel(service):
    client, _, cases = service
    case = cases[1]
    timeline = ok(await client.get(f"/cases/{case.id}/timeline", headers=DISTRICT))
    resp = await client.get(f"/cases/{case.id}/history", params={"format": "csv"}, headers=DISTRICT)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert resp.headers["content-disposition"] == (
        'attachment; filename="YA20260302-0002-history.csv"'
    )
    assert resp.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert [r["事件编号"] for r in rows] == [e["event_id"] for e in timeline["events"]]
    assert [r["类型"] for r in rows] == [e["type"] for e in timeline["events"]]
    ours = [r for r in rows if r["事件编号"] in {str(e.event_id) for e in case.events}]
    assert [(r["时间（北京时间）"], r["事件"], r["部门"]) for r in ours[:4]] == [
        ("2026-03-03 09:00:00", "派单", NAMES["cg"]),
        ("2026-03-03 12:00:00", "部门报到", NAMES["cg"]),
        ("2026-03-04 09:00:00", "部门办结", NAMES["cg"]),
        ("2026-03-04 10:00:00", "返工", ""),
    ]
    assert ours[0]["摘要"] == "描述：楼道堆物；原因：test；主协办：主办"
    assert ours[2]["摘要"] == "办理结果：已清理"
    assert ours[3]["摘要"] == "原因：现场仍有杂物；部门：cg"
    assert ours[-1]["摘要"] == "评分：4分；评语：满意"
    # case 3: cg rejected it, zj never signed for it — the deadline watch raised the alert
    resp = await client.get(
        f"/cases/{cases[2].id}/history", params={"format": "csv"}, headers=DISTRICT
    )
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert [(r["事件"], r["部门"], r["摘要"]) for r in rows if r["类型"] == "case.rejected"] == [
        ("部门退单", NAMES["cg"], "原因：不属于本部门")
    ]
    # zj's sign-for and resolution are both overdue (cg's alert may be there too: the
    # rejection may be heard after the watch fired)
    alerts = {
        r["摘要"]: r for r in rows if r["类型"] == "case.overdue" and r["部门"] == NAMES["zj"]
    }
    assert set(alerts) == {
        "时限：签收；截止：2026-03-04 11:35:00",
        "时限：办结；截止：2026-03-09 09:35:00",
    }
    alert = alerts["时限：签收；截止：2026-03-04 11:35:00"]
    assert (alert["事件"], alert["操作人"], alert["角色"], alert["部门"]) == (
        "超时",
        "时限监控（system:tracking）",
        "系统",
        NAMES["zj"],
    )


async def test_the_export_has_the_timeline_readers_and_rules(service):
    client, _, cases = service
    case = cases[1]  # in YA/YA01/YA0102, cg's
    cg, xf = (
        bearer(Role.DEPARTMENT, department_id="cg"),
        bearer(Role.DEPARTMENT, department_id="xf"),
    )
    assert (
        await client.get(f"/cases/{case.id}/history", params={"format": "csv"}, headers=cg)
    ).status_code == 200
    assert (
        problem(await client.get(f"/cases/{case.id}/history", headers=xf), 403)["code"]
        == "not_your_case"
    )
    assert problem(
        await client.get(f"/cases/{case.id}/history", headers=bearer(Role.STREET, "YA/YA02")), 403
    )
    assert (
        problem(await client.get(f"/cases/{uuid.uuid4()}/history", headers=DISTRICT), 404)["code"]
        == "case_not_found"
    )
    assert problem(
        await client.get(f"/cases/{case.id}/history", params={"format": "xlsx"}, headers=DISTRICT),
        422,
    )
    assert problem(await client.get(f"/cases/{case.id}/history", headers={}), 401)
