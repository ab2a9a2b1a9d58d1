"""Notify's rules without infrastructure: who hears what, who may read an inbox, what it
says, when to retry."""

from __future__ import annotations

import base64
import secrets
import typing
from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from services.notify import consumers, domain
from services.notify import main as notify_main
from services.notify.config import Settings
from services.notify.domain import (
    CaseNotice,
    DeliveryStatus,
    NoticeKind,
    Recipient,
    RecipientKind,
)
from services.notify.handlers import notices
from shared.auth import Forbidden, Principal, Role
from shared.errors import Conflict, Invalid
from shared.contract import (
    AssignmentRole,
    CaseDispatched,
    CaseEscalated,
    CaseExtensionDecided,
    CaseExtensionRequested,
    CasePauseDecided,
    CasePauseRequested,
    CaseResolved,
    CaseResumed,
    CaseWhistled,
    Clock,
    Level,
    Location,
    PauseKind,
    Priority,
    areas,
    new_event,
)

CASE_ID = "7b0c6f5e-2a4b-4c1e-9d7a-0f3e8b1c2d3e"
AREA = "YA/YA01/YA0101/YA0101-03"

DISPATCHED = CaseNotice(
    kind=NoticeKind.DISPATCHED,
    case_id=CASE_ID,
    case_no="YA20261122-0001",
    category="E0101",
    area_path=AREA,
    priority="normal",
    department_id="cg",
    department_name="榆安区城市管理局",
    role="lead",
    description="楼下空地乱堆建筑垃圾",
)
OVERDUE = CaseNotice(
    kind=NoticeKind.OVERDUE,
    case_id=CASE_ID,
    case_no="YA20261122-0001",
    category="E0101",
    area_path=AREA,
    priority="urgent",
    department_id="cg",
    department_name="榆安区城市管理局",
    clock="sign_for",
    due_at=datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
)


def dept(rid: str, department_id: str) -> Recipient:
    return Recipient(id=rid, name=rid, kind=RecipientKind.DEPARTMENT, department_id=department_id)


def sup(rid: str, area: str) -> Recipient:
    return Recipient(id=rid, name=rid, kind=RecipientKind.SUPERVISOR, area_path=area)


def comm(rid: str, area: str) -> Recipient:
    return Recipient(id=rid, name=rid, kind=RecipientKind.COMMUNITY, area_path=area)


EVERYONE = [
    dept("duty-cg", "cg"),
    dept("duty-cg-night", "cg"),
    dept("duty-zj", "zj"),
    sup("sup-district", "YA"),
    sup("sup-ya01", "YA/YA01"),
    sup("sup-ya0101", "YA/YA01/YA0101"),
    sup("sup-grid", AREA),
    sup("sup-ya02", "YA/YA02"),
    sup("sup-prefix-trap", "YA/YA0"),
    sup("sup-ya010", "YA/YA01/YA010"),
    sup("sup-deeper", AREA + "/unit-1"),
]


# --- who hears what ---------------------------------------------------------------------


def ids(rs: list[Recipient]) -> list[str]:
    return [r.id for r in rs]


def test_a_dispatch_goes_to_the_departments_desks_only():
    assert ids(domain.select_recipients(DISPATCHED, EVERYONE)) == ["duty-cg", "duty-cg-night"]


def test_overdue_reaches_supervisors_above_the_case_and_hurries_the_department():
    got = ids(domain.select_recipients(OVERDUE, EVERYONE))
    assert got == sorted(
        ["duty-cg", "duty-cg-night", "sup-district", "sup-ya01", "sup-ya0101", "sup-grid"]
    )
    # another street, a code that is only a string prefix, a level below: none of them
    assert not {"sup-ya02", "sup-prefix-trap", "sup-ya010", "sup-deeper", "duty-zj"} & set(got)


def test_nobody_listening_is_an_empty_list_and_duplicates_collapse():
    assert domain.select_recipients(DISPATCHED, [dept("duty-zj", "zj")]) == []
    twice = [dept("duty-cg", "cg"), dept("duty-cg", "cg")]
    assert ids(domain.select_recipients(DISPATCHED, twice)) == ["duty-cg"]


def test_area_paths_ancestors_and_within():
    assert areas.ancestors("YA/YA01/YA0101") == ["YA", "YA/YA01", "YA/YA01/YA0101"]
    assert areas.within("YA/YA01/YA0101", "YA/YA01")
    assert areas.within("YA/YA01", "YA/YA01")
    assert not areas.within("YA/YA01/YA0101", "YA/YA0")
    assert not areas.within("YA/YA01", "YA/YA01/YA0101")


# --- who may read an inbox -----------------------------------------------------------------


def person(role: str, area: str = "YA", department_id: str | None = None) -> Principal:
    return Principal(
        subject=f"t-{role}", name="测试", role=Role(role), area=area, department_id=department_id
    )


@pytest.mark.parametrize(
    ("who", "recipient", "denied"),
    [
        (person("department", department_id="cg"), dept("duty-cg", "cg"), None),
        (person("department", department_id="xf"), dept("duty-cg", "cg"), "not_your_assignment"),
        (person("supervisor", "YA"), dept("duty-cg", "cg"), "not_your_assignment"),
        (person("district", "YA"), dept("duty-cg", "cg"), "not_your_assignment"),
        (person("supervisor", "YA"), sup("sup-ya01", "YA/YA01"), None),
        (person("supervisor", "YA/YA01"), sup("sup-ya01", "YA/YA01"), None),
        # a street office does not read its supervisor's desk, nor a community office
        (person("street", "YA/YA01"), sup("sup-ya01", "YA/YA01"), "supervisor_inbox"),
        (person("street", "YA"), sup("sup-ya01", "YA/YA01"), "supervisor_inbox"),
        (
            person("community", "YA/YA01/YA0101"),
            sup("sup-ya0101", "YA/YA01/YA0101"),
            "supervisor_inbox",
        ),
        (person("street", "YA/YA01"), comm("comm-ya0101", "YA/YA01/YA0101"), None),
        (person("district", "YA"), sup("sup-ya01", "YA/YA01"), None),
        (person("supervisor", "YA/YA03"), sup("sup-ya01", "YA/YA01"), "out_of_scope"),
        (person("supervisor", "YA/YA0"), sup("sup-ya01", "YA/YA01"), "out_of_scope"),
        (person("community", "YA/YA01/YA0101"), sup("sup-ya01", "YA/YA01"), "supervisor_inbox"),
        (person("department", department_id="cg"), sup("sup-ya01", "YA/YA01"), "out_of_scope"),
        # a desk without its key field matches nobody
        (
            person("department", department_id="cg"),
            Recipient(id="a", name="a", kind=RecipientKind.DEPARTMENT),
            "not_your_assignment",
        ),
        (
            person("district", "YA"),
            Recipient(id="a", name="a", kind=RecipientKind.SUPERVISOR),
            "out_of_scope",
        ),
    ],
)
def test_inbox_access_department_desks_by_their_staff_supervisor_desks_by_overseers(
    who, recipient, denied
):
    if denied is None:
        domain.check_inbox_access(who, recipient)
        return
    with pytest.raises(Forbidden) as err:
        domain.check_inbox_access(who, recipient)
    assert err.value.code == denied and err.value.zh and err.value.en


# --- what the message says ----------------------------------------------------------------


def test_dispatch_message_in_chinese_and_english():
    m = domain.render(DISPATCHED, RecipientKind.DEPARTMENT)
    assert m.body_zh.startswith(
        "【派单】案件YA20261122-0001（E0101）已派至榆安区城市管理局（主办），请及时签收报到。"
    )
    assert f"位置：{AREA}" in m.body_zh and "楼下空地乱堆建筑垃圾" in m.body_zh
    assert m.title_zh == "【派单】案件YA20261122-0001已派至榆安区城市管理局"
    assert m.body_en.startswith(
        "[Dispatched] Case YA20261122-0001 (E0101) has been assigned to "
        "榆安区城市管理局 as lead; please sign for it promptly."
    )
    assert m.link == f"/cases/{CASE_ID}"
    assert m.body_zh.endswith(f"详情：/cases/{CASE_ID}") and m.link in m.body_en


def test_overdue_message_names_clock_deadline_in_beijing_time_and_audience():
    to_sup = domain.render(OVERDUE, RecipientKind.SUPERVISOR)
    to_dept = domain.render(OVERDUE, RecipientKind.DEPARTMENT)
    assert to_sup.title_zh == "【超时】（紧急）案件YA20261122-0001签收报到已超时"
    assert "榆安区城市管理局签收报到已超时（时限2026-11-22 10:00（北京时间））" in to_sup.body_zh
    assert "请督办" in to_sup.body_zh and "请立即办理" in to_dept.body_zh
    assert "sign-for deadline (2026-11-22 10:00 (UTC+8))" in to_sup.body_en
    assert to_sup.title_en.startswith("[Overdue] (urgent) Case YA20261122-0001")


@pytest.mark.parametrize(
    ("payload", "notice_of"),
    [
        (
            lambda **kw: CaseExtensionRequested(**kw, days=3, reason="需采购配件"),
            notices.extension_requested,
        ),
        (
            lambda **kw: CaseExtensionDecided(**kw, approved=True, days=2),
            notices.extension_decided,
        ),
        (
            lambda **kw: CasePauseRequested(**kw, kind=PauseKind.HANG, reason="待资金"),
            notices.pause_requested,
        ),
        (
            lambda **kw: CasePauseDecided(
                **kw, kind=PauseKind.DEFER, reason="汛期", approved=False, comment="不符合条件"
            ),
            notices.pause_decided,
        ),
        (lambda **kw: CaseResumed(**kw, note="资金到位"), notices.resumed),
    ],
)
def test_requests_decisions_and_resumptions_name_the_department(payload, notice_of):
    common = {
        "case_no": "YA20261122-0001",
        "area_path": AREA,
        "category": "E0101",
        "priority": Priority.NORMAL,
        "request_id": uuid4(),
        "assignment_id": uuid4(),
        "department_id": "cg",
    }
    named = new_event(
        payload(**common, department_name="榆安区城市管理局"),
        case_id=UUID(CASE_ID),
        producer="dispatch",
    )
    m = domain.render(notice_of(named), RecipientKind.SUPERVISOR)
    assert "（E0101）榆安区城市管理局" in m.body_zh, m.body_zh
    assert "榆安区城市管理局" in m.body_en and "cg" not in m.body_zh
    # an event written before the name was added still reads: the id stands in
    older = new_event(payload(**common), case_id=UUID(CASE_ID), producer="dispatch")
    assert "（E0101）cg" in domain.render(notice_of(older), RecipientKind.SUPERVISOR).body_zh


def test_link_base_and_unknown_clock():
    m = domain.render(
        CaseNotice(**{**OVERDUE.__dict__, "clock": "visit", "due_at": None}),
        RecipientKind.SUPERVISOR,
        "https://whistle.example.cn/",
    )
    assert m.link == f"https://whistle.example.cn/cases/{CASE_ID}"
    assert "visit已超时（时限未知）" in m.body_zh


def test_webhook_body_is_standard_webhooks_shaped():
    m = domain.render(DISPATCHED, RecipientKind.DEPARTMENT)
    at = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    body = domain.webhook_body(
        DISPATCHED, m, event_id="e-1", recipient_id="duty-cg", occurred_at=at
    )
    assert body["type"] == "case.dispatched" and body["timestamp"] == at.isoformat()
    data = body["data"]
    assert data["case_no"] == "YA20261122-0001" and data["recipient_id"] == "duty-cg"
    assert data["text"] == {"zh": m.body_zh, "en": m.body_en} and data["link"] == m.link


# --- deep links ----------------------------------------------------------------------------

BASE = "https://whistle.example.cn"
ASSIGNMENT_ID = "3f1d2c4b-5a6e-4f70-8a9b-0c1d2e3f4a5b"
# what carries the department's assignment and reaches its desk by default
ABOUT_ITS_ASSIGNMENT = [
    NoticeKind.DISPATCHED,
    NoticeKind.WARNING,
    NoticeKind.OVERDUE,
    NoticeKind.URGED,
    NoticeKind.EXTENSION_DECIDED,
    NoticeKind.PAUSE_DECIDED,
    NoticeKind.RESUMED,
]


def about(kind: NoticeKind, **kw) -> CaseNotice:
    base = {
        **OVERDUE.__dict__,
        "kind": kind,
        "assignment_id": ASSIGNMENT_ID,
        "days": 2,
        "approved": True,
        "pause": "hang",
        "count": 1,
        "level": "street",
    }
    return CaseNotice(**{**base, **kw})


@pytest.mark.parametrize("kind", ABOUT_ITS_ASSIGNMENT)
def test_a_department_desk_is_taken_straight_to_its_assignment(kind):
    m = domain.render(about(kind), RecipientKind.DEPARTMENT, BASE + "/", department_id="cg")
    assert m.link == f"{BASE}/assignments/{ASSIGNMENT_ID}"
    assert m.body_zh.endswith(f"详情：{m.link}") and m.body_en.endswith(f"Details: {m.link}")


@pytest.mark.parametrize("kind", list(NoticeKind))
@pytest.mark.parametrize(
    "audience", [RecipientKind.SUPERVISOR, RecipientKind.COMMUNITY, RecipientKind.GRID_WORKER]
)
def test_everyone_else_is_taken_to_the_case(kind, audience):
    m = domain.render(about(kind), audience, BASE, department_id=None)
    assert m.link == f"{BASE}/cases/{CASE_ID}" and m.link in m.body_zh and m.link in m.body_en


def test_another_departments_or_an_assignmentless_notice_links_the_case():
    # a desk that subscribed to another department's events cannot open its assignment
    other = domain.render(
        about(NoticeKind.DISPATCHED), RecipientKind.DEPARTMENT, BASE, department_id="zj"
    )
    assert other.link == f"{BASE}/cases/{CASE_ID}"
    unknown = domain.render(about(NoticeKind.DISPATCHED), RecipientKind.DEPARTMENT, BASE)
    assert unknown.link == f"{BASE}/cases/{CASE_ID}"
    closed = domain.render(
        about(NoticeKind.CLOSED, assignment_id=None),
        RecipientKind.DEPARTMENT,
        BASE,
        department_id="cg",
    )
    assert closed.link == f"{BASE}/cases/{CASE_ID}"
    # without a base (embedded console only) the link is a path
    bare = domain.render(about(NoticeKind.URGED), RecipientKind.DEPARTMENT, department_id="cg")
    assert bare.link == f"/assignments/{ASSIGNMENT_ID}"


def test_the_consumed_event_carries_its_assignment_into_the_message_and_the_webhook():
    aid = uuid4()
    event = new_event(
        CaseResumed(
            case_no="YA20261122-0001",
            area_path=AREA,
            category="E0101",
            priority=Priority.NORMAL,
            request_id=uuid4(),
            assignment_id=aid,
            department_id="cg",
            department_name="榆安区城市管理局",
            note="资金到位",
        ),
        case_id=UUID(CASE_ID),
        producer="dispatch",
    )
    notice = notices.resumed(event)
    assert notice.assignment_id == str(aid)
    m = domain.render(notice, RecipientKind.DEPARTMENT, BASE, department_id="cg")
    assert m.link == f"{BASE}/assignments/{aid}"
    body = domain.webhook_body(
        notice,
        m,
        event_id="e-1",
        recipient_id="duty-cg",
        occurred_at=datetime(2026, 11, 22, 1, 0, tzinfo=UTC),
    )
    assert body["data"]["link"] == m.link and body["data"]["assignment_id"] == str(aid)
    assert body["data"]["facts"]["link"] == m.link  # an SMS template's {link}


def test_each_notice_kind_is_heard_through_the_reader_of_its_own_event_class():
    routes = consumers.routes(lambda read: read)  # the routes' handlers are the readers
    kinds = [NoticeKind(r.event.TYPE) for r in routes]
    assert sorted(kinds) == sorted(NoticeKind)  # each kind once, nothing else
    for r in routes:
        hints = typing.get_type_hints(r.handler)
        assert hints["event"].__pydantic_generic_metadata__["args"] == (r.event,), r.event


def case_facts(**kw):
    return {
        "case_no": "YA20261122-0001",
        "area_path": AREA,
        "category": "E0101",
        "priority": Priority.URGENT,
        **kw,
    }


def test_a_co_handlers_partial_resolution_tells_nobody_the_whole_case_the_reporters_side():
    aid = uuid4()
    part = case_facts(assignment_id=aid, department_id="cg", result="已清运")

    def event(**kw):
        return new_event(CaseResolved(**part, **kw), case_id=UUID(CASE_ID), producer="dispatch")

    assert notices.resolved(event(case_resolved=False)) is None
    notice = notices.resolved(event())
    assert notice.kind is NoticeKind.RESOLVED and notice.assignment_id == str(aid)
    assert notice.department_name == "cg" and notice.result == "已清运"  # no name on the event


def test_readers_take_each_events_own_facts():
    whistle = new_event(
        CaseWhistled(
            **case_facts(),
            grid_code="YA0101-03",
            description="井盖缺失",
            location=Location(address="桃园小区5号楼"),
            note="社区无法协调",
            level=Level.STREET,
        ),
        case_id=UUID(CASE_ID),
        producer="intake",
    )
    n = notices.whistled(whistle)
    assert (n.kind, n.level, n.place, n.note) == (
        NoticeKind.WHISTLED,
        "street",
        "桃园小区5号楼",
        "社区无法协调",
    )
    assert n.department_id is None and n.priority == "urgent" and n.case_id == CASE_ID
    dispatch = new_event(
        CaseDispatched(
            **case_facts(),
            assignment_id=uuid4(),
            department_id="cg",
            department_name="榆安区城市管理局",
            role=AssignmentRole.CO,
            rule_id=None,
            reason="派单规则 12",
            description="井盖缺失",
        ),
        case_id=UUID(CASE_ID),
        producer="dispatch",
    )
    d = notices.dispatched(dispatch)
    assert (d.role, d.reason, d.department_name) == ("co", "派单规则 12", "榆安区城市管理局")
    ladder = new_event(
        CaseEscalated(
            **case_facts(),
            assignment_id=uuid4(),
            department_id="cg",
            department_name="榆安区城市管理局",
            clock=Clock.RESOLVE,
            due_at=datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
            level=Level.DISTRICT,
            step=2,
            repeat=0,
        ),
        case_id=UUID(CASE_ID),
        producer="tracking",
    )
    e = notices.escalated(ladder)
    assert (e.clock, e.level, e.due_at) == ("resolve", "district", ladder.payload.due_at)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("https://whistle.example.gov.cn", "https://whistle.example.gov.cn"),
        (" https://whistle.example.gov.cn/ ", "https://whistle.example.gov.cn"),
        ("http://127.0.0.1:8100", "http://127.0.0.1:8100"),
        ("", ""),
    ],
)
def test_public_base_url_is_kept_without_a_trailing_slash(raw, kept):
    s = Settings(
        environment="test", database_url="postgresql://x@127.0.0.1:1/x", public_base_url=raw
    )
    assert s.public_base_url == kept


@pytest.mark.parametrize(
    "raw",
    [
        "whistle.example.gov.cn",
        "ftp://whistle.example.gov.cn",
        "https://",
        "https://w.example.cn/?x=1",
        "https://w.example.cn/#a",
    ],
)
def test_a_public_base_url_that_is_no_console_address_is_refused(raw):
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL"):
        Settings(
            environment="test", database_url="postgresql://x@127.0.0.1:1/x", public_base_url=raw
        )


def test_a_missing_public_base_url_is_logged_at_start_outside_the_embedded_mode(monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(
        notify_main, "log", SimpleNamespace(warning=lambda event, **kw: warnings.append(event))
    )
    production = {
        "environment": "production",
        "database_url": "postgresql://x@127.0.0.1:1/x",
        "auth_secret": secrets.token_urlsafe(36),
        "channel_secrets_keys": Fernet.generate_key().decode(),
        "log_json": False,
    }
    notify_main.create_app(Settings(**production))
    assert warnings == ["public_base_url_missing"]
    notify_main.create_app(Settings(**production, public_base_url="https://whistle.example.gov.cn"))
    notify_main.create_app(
        Settings(environment="test", database_url="postgresql://x@127.0.0.1:1/x")
    )
    assert warnings == ["public_base_url_missing"]


# --- retries -------------------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_jittered():
    full = [domain.retry_delay(n, base=30, cap=3600, rand=1.0) for n in range(1, 9)]
    assert full == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert domain.retry_delay(3, base=30, cap=3600, rand=0.0) == 60  # half of 120
    for _ in range(200):
        assert 15 <= domain.retry_delay(1, base=30, cap=3600) <= 30
        assert 1800 <= domain.retry_delay(20, base=30, cap=3600) <= 3600


def test_after_failure_retry_until_the_last_attempt_then_dead():
    assert domain.status_after_failure(1, 6) is DeliveryStatus.PENDING
    assert domain.status_after_failure(5, 6) is DeliveryStatus.PENDING
    assert domain.status_after_failure(6, 6) is DeliveryStatus.DEAD
    assert domain.status_after_failure(1, 6, gone=True) is DeliveryStatus.DEAD


@pytest.mark.parametrize(
    ("code", "ok", "transient"),
    [
        (200, True, False),
        (204, True, False),
        (301, False, False),
        (400, False, False),
        (404, False, False),
        (408, False, True),
        (429, False, True),
        (500, False, True),
        (503, False, True),
    ],
)
def test_status_codes(code, ok, transient):
    assert domain.is_success(code) is ok
    assert domain.is_transient(code) is transient


def test_only_dead_deliveries_can_be_replayed():
    domain.check_replay(DeliveryStatus.DEAD)
    for status in (DeliveryStatus.SENT, DeliveryStatus.PENDING):
        with pytest.raises(Conflict) as err:
            domain.check_replay(status)
        assert err.value.code == "not_dead" and "dead" in err.value.zh


def test_a_replay_is_refused_while_another_channel_carries_the_message_unless_forced():
    others = [
        domain.Carrier(7, "feishu", DeliveryStatus.DEAD),
        domain.Carrier(8, "email", DeliveryStatus.SENT),
    ]
    with pytest.raises(Conflict) as err:
        domain.check_replay(DeliveryStatus.DEAD, others)
    assert err.value.code == "already_delivered"
    assert "email 渠道已送达（投递 8）" in err.value.zh and "force=true" in err.value.en
    domain.check_replay(DeliveryStatus.DEAD, others, force=True)
    pending = [domain.Carrier(9, "sms", DeliveryStatus.PENDING)]
    with pytest.raises(Conflict) as err:
        domain.check_replay(DeliveryStatus.DEAD, pending)
    assert "sms 渠道正在投递（投递 9）" in err.value.zh and "is on its way on sms" in err.value.en
    domain.check_replay(DeliveryStatus.DEAD, others[:1])  # the others gave up too: replay
    with pytest.raises(Conflict) as err:
        domain.check_replay(DeliveryStatus.SENT, others, force=True)
    assert err.value.code == "not_dead"  # force does not replay what was sent


def test_webhook_message_id_is_stable():
    a = domain.webhook_message_id(CASE_ID, "duty-cg")
    assert a == domain.webhook_message_id(CASE_ID, "duty-cg")
    assert a != domain.webhook_message_id(CASE_ID, "duty-zj")


# --- recipients --------------------------------------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def test_valid_recipients_pass():
    domain.validate_recipient(
        Recipient(
            id="duty-cg",
            name="城管值班室",
            kind=RecipientKind.DEPARTMENT,
            department_id="cg",
            webhook_url="https://hooks.example.cn/whistle?x=1",
            webhook_secret=SECRET,
        )
    )
    domain.validate_recipient(sup("sup-ya01", "YA/YA01"))


@pytest.mark.parametrize(
    ("recipient", "code"),
    [
        (Recipient(id="a", name="a", kind=RecipientKind.DEPARTMENT), "department_required"),
        (Recipient(id="a", name="a", kind=RecipientKind.SUPERVISOR), "area_required"),
        (sup("a", "YA//YA01"), "invalid_area_path"),
        (sup("a", "/YA"), "invalid_area_path"),
        (
            Recipient(
                id="a",
                name="a",
                kind=RecipientKind.DEPARTMENT,
                department_id="cg",
                webhook_url="not a url",
            ),
            "invalid_webhook_url",
        ),
        (
            Recipient(
                id="a",
                name="a",
                kind=RecipientKind.DEPARTMENT,
                department_id="cg",
                webhook_url="ftp://example.cn/x",
            ),
            "invalid_webhook_url",
        ),
        (
            Recipient(
                id="a",
                name="a",
                kind=RecipientKind.DEPARTMENT,
                department_id="cg",
                webhook_url="http://:80/x",
            ),
            "invalid_webhook_url",
        ),
        (
            Recipient(
                id="a",
                name="a",
                kind=RecipientKind.DEPARTMENT,
                department_id="cg",
                webhook_url="http://example.cn:99999/x",
            ),
            "invalid_webhook_url",
        ),
        (
            Recipient(
                id="a",
                name="a",
                kind=RecipientKind.DEPARTMENT,
                department_id="cg",
                webhook_secret="whsec_short",
            ),
            "invalid_webhook_secret",
        ),
        (
            Recipient(
                id="a",
                name="a",
                kind=RecipientKind.DEPARTMENT,
                department_id="cg",
                webhook_secret="not base64 at all!",
            ),
            "invalid_webhook_secret",
        ),
    ],
)
def test_invalid_recipients_are_refused_with_a_chinese_message(recipient, code):
    with pytest.raises(Invalid) as err:
        domain.validate_recipient(recipient)
    assert err.value.code == code and err.value.zh and err.value.en


# --- sealing at start ---------------------------------------------------------------------------


async def test_a_failed_reseal_at_start_is_tried_again_until_it_succeeds(monkeypatch):
    """A rotation drops the old key once every replica has restarted: a reseal that failed
    once (the database not reachable yet) must not wait for a next start that never comes."""
    import asyncio

    from services.notify import sealing

    calls = []

    async def flaky(pool, box):
        calls.append(pool)
        if len(calls) == 1:
            raise OSError("connection refused")
        return 3

    monkeypatch.setattr(sealing, "reseal_all", flaky)
    resealer = sealing.Resealer(
        lambda: "pool", sealing.SecretBox([Fernet.generate_key()]), retry_seconds=0.01
    )
    resealer.start()
    try:
        async with asyncio.timeout(5):
            await resealer.done.wait()
    finally:
        await resealer.stop()
    assert len(calls) == 2
