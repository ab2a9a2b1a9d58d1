"""The seeds' counts (/kpi/grid-work, /kpi/sources) and the 督办 integrity checks
(/kpi/integrity) on real PostgreSQL and the real broker: intake's and dispatch's events are
published to Kafka, tracking's consumer records them, the figures are read over HTTP.

Day 0 is Monday 2026-03-02 (Beijing time), demo calendar 08:30–12:00, 13:30–17:30. E0101
normal: sign-for 2 working hours, resolution 3 working days.

| case | grid | what happened |
| --- | --- | --- |
| S1 | YA0101-01 | reported (hotline), closed on the spot by 李网格 |
| S2 | YA0101-02 | reported by an old event without a source, closed on the spot by 李网格 |
| S3 | YA0201-01 | reported (resident), closed on the spot by 王网格, reopened: not closed |
| S4 | YA0101-01 | reported (wechat_group), closed after the check by 桃园社区 |
| P | YA0101-01 | cg resolved d0 11:00, rework naming cg d1: premature close |
| Q | YA0101-01 | cg signed 10:50 of 11:00 (last minute), resolved d1, closed, reopened d9: no premature |
| P2 | YA0201-01 | zj resolved, rework naming nobody next day: premature (outside 迎泽街道) |
| R | YA0101-01 | cg rejected → zj transferred → cg: churn |
| R2 | YA0101-02 | cg rejected → zj: a single hand-off, no churn |
| L | YA0101-02 | zj signed 09:10, first progress d2 16:30 (last tenth of the window), resolved 17:00 |
| V1–V5 | YA0102-01 | xf resolved, rated: 4 by the grid worker (5 stars), 1 by the resident's link |
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest
from aiokafka import AIOKafkaProducer

from services.tracking.main import create_app
from shared.auth import Role
from shared.contract import (
    Actor,
    CaseClosed,
    CaseDispatched,
    CaseProgressed,
    CaseRated,
    CaseRejected,
    CaseReopened,
    CaseReported,
    CaseResolved,
    CaseReworkRequested,
    CaseSignedFor,
    CaseTransferred,
    Location,
    Priority,
    new_event,
)
from tests.component import tracking_fixtures
from tests.component.tracking_fixtures import at
from tests.helpers import as_user, bearer, eventually, fetchval, running_app

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
LI = Actor(subject="li", role="grid_worker", name="李网格")
WANG = Actor(subject="wang", role="grid_worker", name="王网格")
TAOYUAN = Actor(subject="taoyuan", role="community", name="桃园社区书记")
DISTRICT = bearer(Role.DISTRICT)


def grid(code: str) -> str:
    return f"YA/{code[:4]}/{code[:6]}/{code}"


class Case:
    def __init__(self, name: str, grid_code: str) -> None:
        self.id = uuid.uuid4()
        self.grid = grid_code
        self.facts = {
            "case_no": f"YA-{name}",
            "area_path": grid(grid_code),
            "category": "E0101",
            "priority": Priority.NORMAL,
        }
        self.events: list = []
        self.raw: list[bytes | None] = []

    def _add(self, producer: str, payload, when: datetime, actor=None, raw=None) -> None:
        e = new_event(payload, case_id=self.id, producer=producer, occurred_at=when, actor=actor)
        self.events.append(e)
        self.raw.append(raw(e) if raw else None)

    def report(self, when: datetime, source: str | None) -> None:
        fields = {} if source is None else {"source": source}
        payload = CaseReported(
            **self.facts,
            grid_code=self.grid,
            description="楼道堆物",
            location=Location(address="桃园小区"),
            reporter="李网格",
            reported_at=when,
            **fields,
        )

        def without_source(e) -> bytes:  # an event from before the contract named a source
            body = json.loads(e.to_bytes())
            del body["payload"]["source"]
            return json.dumps(body).encode()

        self._add("intake", payload, when, LI, without_source if source is None else None)

    def intake(self, cls, when: datetime, actor=None, **fields) -> None:
        self._add("intake", cls(**self.facts, **fields), when, actor)

    def dispatch(self, dept: str, when: datetime) -> uuid.UUID:
        a = uuid.uuid4()
        payload = CaseDispatched(
            **self.facts,
            assignment_id=a,
            department_id=dept,
            department_name=f"部门{dept}",
            role="lead",
            rule_id=1,
            reason="test",
            description="楼道堆物",
        )
        self._add("dispatch", payload, when)
        return a

    def act(self, cls, a: uuid.UUID, dept: str, when: datetime, **fields) -> None:
        payload = cls(**self.facts, assignment_id=a, department_id=dept, **fields)
        self._add("dispatch", payload, when)


def handled(c: Case, dept: str, day: int, *, signed=(9, 10), resolved=(10, 0)) -> None:
    a = c.dispatch(dept, at(day, 9))
    c.act(CaseSignedFor, a, dept, at(day, *signed))
    c.act(CaseResolved, a, dept, at(day, *resolved), result="已处理")


def data_set() -> list[Case]:
    s1, s2 = Case("S1", "YA0101-01"), Case("S2", "YA0101-02")
    s1.report(at(0, 8), "hotline")
    s1.intake(CaseClosed, at(0, 8, 30), LI, note="已清理", resolution="on_spot")
    s2.report(at(0, 8), None)
    s2.intake(CaseClosed, at(0, 9), LI, note="已清理", resolution="on_spot")
    s3 = Case("S3", "YA0201-01")
    s3.report(at(1, 8), "resident")
    s3.intake(CaseClosed, at(1, 9), WANG, note="已清理", resolution="on_spot")
    s3.intake(CaseReopened, at(2, 9), TAOYUAN, reason="又堆上了")
    s4 = Case("S4", "YA0101-01")
    s4.report(at(1, 8), "wechat_group")
    s4.intake(CaseClosed, at(1, 9), TAOYUAN, note="核查通过")

    p = Case("P", "YA0101-01")
    handled(p, "cg", 0, signed=(9, 30), resolved=(11, 0))
    p.intake(CaseReworkRequested, at(1, 9), TAOYUAN, reason="仍有杂物", departments=["cg"])
    q = Case("Q", "YA0101-01")
    a = q.dispatch("cg", at(0, 9))
    q.act(CaseSignedFor, a, "cg", at(0, 10, 50))
    q.act(CaseResolved, a, "cg", at(1, 9), result="已处理")
    q.intake(CaseClosed, at(1, 10), TAOYUAN, note="核查通过")
    q.intake(CaseReopened, at(9, 10), TAOYUAN, reason="又堆上了")
    p2 = Case("P2", "YA0201-01")
    handled(p2, "zj", 0, resolved=(12, 0))
    p2.intake(CaseReworkRequested, at(1, 9), reason="未处理到位", departments=[])

    r = Case("R", "YA0101-01")
    a = r.dispatch("cg", at(2, 9))
    r.act(CaseRejected, a, "cg", at(2, 9, 30), reason="不归我管")
    b = r.dispatch("zj", at(2, 9, 30))
    r.act(CaseTransferred, b, "zj", at(2, 10), to_department_id="cg", reason="应由城管")
    r.dispatch("cg", at(2, 10))
    r2 = Case("R2", "YA0101-02")
    a = r2.dispatch("cg", at(2, 9))
    r2.act(CaseRejected, a, "cg", at(2, 9, 30), reason="不归我管")
    r2.dispatch("zj", at(2, 9, 30))

    lc = Case("L", "YA0101-02")
    a = lc.dispatch("zj", at(0, 9))
    lc.act(CaseSignedFor, a, "zj", at(0, 9, 10))
    lc.act(CaseProgressed, a, "zj", at(2, 16, 30), note="已到现场")
    lc.act(CaseResolved, a, "zj", at(2, 17), result="已处理")

    rated = []
    for i in range(5):
        v = Case(f"V{i + 1}", "YA0102-01")
        handled(v, "xf", 3)
        proxy = i < 4
        v.intake(
            CaseRated,
            at(3, 11),
            LI if proxy else None,
            score=5 if proxy else 4,
            channel="grid_worker" if proxy else "link",
        )
        rated.append(v)
    return [s1, s2, s3, s4, p, q, p2, r, r2, lc, *rated]


@pytest.fixture(scope="module")
async def service(pg_server, kafka_server):
    settings = await tracking_fixtures.service_settings(pg_server, kafka_server)
    dsn = settings.database_url.get_secret_value()
    cases = data_set()
    async with running_app(create_app(settings)) as client:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
        await producer.start()
        try:
            for name in ("dispatch", "intake"):  # a case's dispatch before its closing
                sent = [
                    (e, raw)
                    for c in cases
                    for e, raw in zip(c.events, c.raw, strict=True)
                    if e.producer == name
                ]
                for e, raw in sent:
                    body = raw or e.to_bytes()
                    await producer.send_and_wait(e.topic, body, key=str(e.case_id).encode())
                ids = [e.event_id for e, _ in sent]

                async def recorded(ids=ids) -> bool:
                    n = await fetchval(
                        dsn, "SELECT count(*) FROM case_events WHERE event_id = ANY($1)", ids
                    )
                    return n == len(ids)

                await eventually(recorded, timeout=60, message=f"tracking recorded {name}'s")
        finally:
            await producer.stop()
        yield client, dsn


def ok(resp) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- the seeds' counts ------------------------------------------------------------------------


async def test_on_the_spot_closings_per_worker_grid_and_community(service):
    client, _ = service
    body = ok(
        await client.get("/kpi/grid-work", params={**MARCH, "level": "community"}, headers=DISTRICT)
    )
    areas = {a["unit"]: a for a in body["areas"]}
    # 桃园: S1, S2 on the spot; S4 checked; Q reopened since (no closing). 锦绣: S3 reopened.
    assert (areas["YA/YA01/YA0101"]["closed"], areas["YA/YA01/YA0101"]["on_spot"]) == (3, 2)
    assert areas["YA/YA01/YA0101"]["grid_level_rate"]["label"] == "66.7%"
    assert "YA/YA02/YA0201" not in areas
    assert body["level"] == "community"
    assert body["workers"] == [
        {
            "subject": "li",
            "name": "李网格",
            "on_spot": 2,
            "grids": [grid("YA0101-01"), grid("YA0101-02")],
        }
    ]
    grids = ok(
        await client.get(
            "/kpi/grid-work", params={**MARCH, "area": "YA/YA01/YA0101"}, headers=DISTRICT
        )
    )
    assert grids["level"] == "grid"
    assert {a["unit"]: a["on_spot"] for a in grids["areas"]} == {
        grid("YA0101-01"): 1,
        grid("YA0101-02"): 1,
    }
    assert (grids["total"]["closed"], grids["total"]["on_spot"]) == (3, 2)


async def test_cases_per_source_and_an_old_report_is_grid_patrol(service):
    client, dsn = service
    assert (
        await fetchval(
            dsn,
            "SELECT source FROM case_origins o JOIN cases c USING (case_id)"
            " WHERE c.case_no = 'YA-S2'",
        )
        == "grid_patrol"
    )
    body = ok(await client.get("/kpi/sources", params=MARCH, headers=DISTRICT))
    assert [s["code"] for s in body["sources"]][:3] == ["grid_patrol", "resident", "hotline"]
    assert body["sources"][2]["label_zh"] == "12345热线"
    streets = {a["unit"]: a for a in body["areas"]}
    assert streets["YA/YA01"]["by_source"] == {
        "grid_patrol": 1,
        "resident": 0,
        "hotline": 1,
        "wechat_group": 1,
        "proactive": 0,
    }
    assert streets["YA/YA02"]["reported"] == 1 and streets["YA/YA02"]["by_source"]["resident"] == 1
    assert body["total"]["reported"] == 4


# --- the integrity checks -------------------------------------------------------------------


def findings(body: dict) -> dict[str, dict]:
    return {d["department_id"]: d["findings"] for d in body["departments"]}


async def test_premature_closes_per_department_with_evidence(service):
    client, _ = service
    f = findings(ok(await client.get("/kpi/integrity", params=MARCH, headers=DISTRICT)))
    cg = f["cg"]["premature_close"]
    assert (cg["examined"], cg["flagged"]) == (2, 1)  # P flagged; Q reopened after 8 days
    item = cg["evidence"]["items"][0]
    assert item["case_no"] == "YA-P" and cg["evidence"]["total"] == 1
    assert [s["type"] for s in item["steps"]] == ["case.resolved", "case.rework_requested"]
    assert cg["label_zh"].startswith("过早办结")
    zj = f["zj"]["premature_close"]  # P2 (rework naming nobody); L not sent back
    assert (zj["examined"], zj["flagged"]) == (2, 1)
    shorter = findings(
        ok(
            await client.get(
                "/kpi/integrity", params={**MARCH, "rework_days": 10}, headers=DISTRICT
            )
        )
    )
    assert shorter["cg"]["premature_close"]["flagged"] == 2  # now Q's reopening counts


async def test_dispatch_churn_per_department_pair(service):
    client, _ = service
    body = ok(await client.get("/kpi/integrity", params=MARCH, headers=DISTRICT))
    assert len(body["churn_pairs"]) == 1
    pair = body["churn_pairs"][0]
    assert (pair["departments"], pair["cases"], pair["hops"]) == (["cg", "zj"], 1, 2)
    assert pair["names"] == ["部门cg", "部门zj"]
    assert pair["evidence"]["items"][0]["case_no"] == "YA-R"
    churn = findings(body)["cg"]["dispatch_churn"]
    assert (churn["examined"], churn["flagged"]) == (2, 1)  # R churns, R2 does not


async def test_last_minute_sign_for_and_progress(service):
    client, _ = service
    f = findings(ok(await client.get("/kpi/integrity", params=MARCH, headers=DISTRICT)))
    sign = f["cg"]["last_minute_sign_for"]
    assert sign["flagged"] == 1 and sign["evidence"]["items"][0]["case_no"] == "YA-Q"
    progress = f["zj"]["last_minute_progress"]
    assert progress["flagged"] == 1 and progress["evidence"]["items"][0]["case_no"] == "YA-L"
    assert f["xf"]["last_minute_sign_for"]["flagged"] == 0  # signed 10 minutes in
    assert f["xf"]["last_minute_sign_for"]["examined"] == 5


async def test_proxy_ratings_per_department_and_community(service):
    client, _ = service
    body = ok(await client.get("/kpi/integrity", params=MARCH, headers=DISTRICT))
    xf = findings(body)["xf"]["proxy_rating"]
    assert (xf["examined"], xf["flagged"], xf["alert"], xf["all_five_stars"]) == (5, 4, True, True)
    assert xf["rate"]["label"] == "80.0%"
    community = {c["area_path"]: c["proxy_rating"] for c in body["communities"]}
    assert community["YA/YA01/YA0102"]["alert"]
    # a higher bar: 80 % is not above 90 %
    strict = ok(
        await client.get("/kpi/integrity", params={**MARCH, "proxy_share": 0.9}, headers=DISTRICT)
    )
    assert not findings(strict)["xf"]["proxy_rating"]["alert"]
    capped = ok(
        await client.get("/kpi/integrity", params={**MARCH, "evidence_limit": 1}, headers=DISTRICT)
    )
    ev = findings(capped)["xf"]["proxy_rating"]["evidence"]
    assert (ev["total"], len(ev["items"])) == (4, 1)


async def test_a_street_supervisor_sees_only_his_subtree(service):
    client, _ = service
    f = findings(
        ok(await client.get("/kpi/integrity", params=MARCH, headers=as_user("sup-yingze")))
    )
    assert f["zj"]["premature_close"]["flagged"] == 0  # P2 lies in 锦绣 (YA02)
    forbidden = await client.get(
        "/kpi/integrity", params={**MARCH, "area": "YA/YA02"}, headers=as_user("sup-yingze")
    )
    assert forbidden.status_code == 403
    counts = ok(await client.get("/kpi/sources", params=MARCH, headers=as_user("sup-yingze")))
    assert {a["unit"] for a in counts["areas"]} == {"YA/YA01/YA0101"}


async def test_who_may_ask_and_bad_thresholds(service):
    client, _ = service
    community = as_user("taoyuan")
    assert (await client.get("/kpi/integrity", params=MARCH, headers=community)).status_code == 403
    assert (await client.get("/kpi/grid-work", params=MARCH, headers=community)).status_code == 200
    dept = as_user("cg-duty")
    assert (await client.get("/kpi/sources", params=MARCH, headers=dept)).status_code == 403
    bad = await client.get("/kpi/integrity", params={**MARCH, "last_share": 0.9}, headers=DISTRICT)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_threshold"
    assert "last_share" in bad.json()["error"]["message"]
    typo = await client.get("/kpi/integrity", params={**MARCH, "rework_day": 3}, headers=DISTRICT)
    assert typo.json()["error"]["code"] == "unknown_parameter"
    level = await client.get("/kpi/grid-work", params={**MARCH, "level": "unit"}, headers=DISTRICT)
    assert level.json()["error"]["code"] == "invalid_level"
