"""Notify's rules for preferences, subscriptions, messages and pacing, without
infrastructure."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from services.notify import domain
from services.notify.domain import (
    CaseNotice,
    Channel,
    ChannelPref,
    NoticeKind,
    Preferences,
    Recipient,
    RecipientKind,
    RobotPlan,
    Subscription,
)
from services.notify.domain.preferences import SECRET_KEYS
from shared.errors import Invalid

CASE_ID = "7b0c6f5e-2a4b-4c1e-9d7a-0f3e8b1c2d3e"
AREA = "YA/YA01/YA0101/YA0101-03"


def at_beijing(hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, 22, hh, mm, tzinfo=UTC) - timedelta(hours=8)


# --- quiet hours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "start", "end", "until"),
    [
        (at_beijing(23), time(22), time(7), at_beijing(7) + timedelta(days=1)),  # over midnight
        (at_beijing(3), time(22), time(7), at_beijing(7)),
        (at_beijing(7), time(22), time(7), None),  # the end is no longer quiet
        (at_beijing(12), time(22), time(7), None),
        (at_beijing(13), time(12), time(14), at_beijing(14)),  # a midday rest
        (at_beijing(11, 59), time(12), time(14), None),
    ],
)
def test_quiet_hours_in_beijing_time(now, start, end, until):
    assert domain.quiet_until(now, start, end, urgent=False) == until


def test_urgent_cases_and_recipients_without_quiet_hours_are_never_held():
    assert domain.quiet_until(at_beijing(23), time(22), time(7), urgent=True) is None
    assert domain.quiet_until(at_beijing(23), None, None, urgent=False) is None


# --- channel preferences and secrets ------------------------------------------------------------


def test_preferences_refuse_the_inbox_duplicates_and_half_quiet_hours():
    for p, code in [
        (Preferences(channels=(ChannelPref(Channel.INBOX),)), "inbox_always_on"),
        (
            Preferences(channels=(ChannelPref(Channel.SMS), ChannelPref(Channel.SMS))),
            "duplicate_channel",
        ),
        (Preferences(quiet_start=time(22)), "invalid_quiet_hours"),
        (Preferences(locale="fr"), "invalid_locale"),
    ]:
        with pytest.raises(Invalid) as err:
            domain.check_preferences(p)
        assert err.value.code == code


def test_secrets_are_masked_and_kept_when_left_out_or_sent_back_masked():
    ding = {
        "url": "https://oapi.dingtalk.com/robot/send?access_token=abcdef1234567890",
        "secret": "SEC" + "x" * 40 + "9876",
    }
    shown = domain.masked_settings("dingtalk", ding)
    assert shown["secret"] == "****9876" and "abcdef" not in shown["url"]
    assert shown["url"].endswith("access_token=****7890")
    assert domain.keep_secrets("dingtalk", shown, ding) == ding
    assert domain.keep_secrets("dingtalk", {"url": ding["url"]}, ding) == ding
    changed = domain.keep_secrets("dingtalk", {**shown, "secret": "SECnew"}, ding)
    assert changed["secret"] == "SECnew" and changed["url"] == ding["url"]
    feishu = {"url": "https://open.feishu.cn/open-apis/bot/v2/hook/0123-4567-89ab-cdef"}
    assert domain.masked_settings("feishu", feishu)["url"].endswith("/hook/****cdef")
    assert domain.masked_settings("email", {"password": "short"})["password"] == "****"
    assert domain.keep_secrets("email", {"host": "h"}, None) == {"host": "h"}


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        (
            "webhook",
            {"url": "https://hooks.example.cn/a", "secret": "whsec_old"},
            {"url": "https://evil.example.com/a"},
        ),
        (
            "webhook",
            {"url": "https://hooks.example.cn/a", "secret": "whsec_old"},
            {"url": "https://hooks.example.cn:8443/a", "secret": "****_old"},
        ),
        (
            "dingtalk",
            {
                "url": "https://oapi.dingtalk.com/robot/send?access_token=t1234567890abc",
                "secret": "SEC" + "x" * 40,
            },
            {
                "url": "https://robot.example.com/robot/send?access_token=t1234567890abc",
                "secret": "****xxxx",
            },
        ),
        (
            "email",
            {"host": "smtp.example.cn", "password": "p4ssw0rd-long"},
            {"host": "smtp.attacker.example"},
        ),
        (
            "sms",
            {"url": "https://sms.example.cn/v1/send", "app_secret": "s" * 20},
            {"url": "https://sms.other.example/v1/send", "app_secret": "****ssss"},
        ),
    ],
)
def test_a_new_host_needs_a_new_secret(kind, old, new):
    with pytest.raises(Invalid) as err:
        domain.keep_secrets(kind, new, old)
    assert err.value.code == "secret_required" and "新的主机" in err.value.zh
    # the same host keeps it; a new host with a new secret takes the new one
    (key,) = SECRET_KEYS[kind]
    moved_with_secret = {**new, key: "fresh-secret-value"}
    assert domain.keep_secrets(kind, moved_with_secret, old)[key] == "fresh-secret-value"
    same = {k: v for k, v in old.items() if k != key}
    assert domain.keep_secrets(kind, same, old) == old


def test_channel_list_puts_a_webhook_given_the_first_way_first_and_falls_back_in_order():
    prefs = Preferences(
        channels=(ChannelPref(Channel.WECOM, {"url": "w"}), ChannelPref(Channel.SMS, {"url": "s"}))
    )
    r = Recipient(
        id="a",
        name="a",
        kind=RecipientKind.DEPARTMENT,
        department_id="cg",
        webhook_url="https://h.example.cn",
        preferences=prefs,
    )
    assert [c.kind for c in r.channel_list()] == [Channel.WEBHOOK, Channel.WECOM, Channel.SMS]
    assert r.next_channel("webhook", 0).kind is Channel.WECOM
    assert r.next_channel("wecom", 1).kind is Channel.SMS
    assert r.next_channel("sms", 2) is None
    assert r.next_channel("email", 1).kind is Channel.WECOM  # removed since: its old place
    listed = Recipient(
        **{
            **r.__dict__,
            "preferences": Preferences(
                channels=(ChannelPref(Channel.SMS), ChannelPref(Channel.WEBHOOK, {"url": "x"}))
            ),
        }
    )
    assert [c.kind for c in listed.channel_list()] == [Channel.SMS, Channel.WEBHOOK]


# --- who hears what ---------------------------------------------------------------------------


def notice(kind: NoticeKind, **kw) -> CaseNotice:
    base = {
        "case_id": CASE_ID,
        "case_no": "YA20261122-0001",
        "category": "C0103",
        "area_path": AREA,
        "priority": "urgent",
        "department_id": "gs",
        "department_name": "榆安供水公司",
    }
    return CaseNotice(kind=kind, **{**base, **kw})


DESKS = [
    Recipient(id="duty-gs", name="供水", kind=RecipientKind.DEPARTMENT, department_id="gs"),
    Recipient(id="sup-ya01", name="督办", kind=RecipientKind.SUPERVISOR, area_path="YA/YA01"),
    Recipient(id="com-0101", name="社区", kind=RecipientKind.COMMUNITY, area_path="YA/YA01/YA0101"),
    Recipient(id="grid-03", name="网格员", kind=RecipientKind.GRID_WORKER, area_path=AREA),
    Recipient(
        id="com-0102", name="别的社区", kind=RecipientKind.COMMUNITY, area_path="YA/YA01/YA0102"
    ),
]


@pytest.mark.parametrize(
    ("kind", "extra", "heard"),
    [
        (NoticeKind.DISPATCHED, {}, ["duty-gs"]),
        (NoticeKind.WARNING, {}, ["duty-gs"]),
        (NoticeKind.OVERDUE, {}, ["duty-gs", "sup-ya01"]),
        (NoticeKind.ESCALATED, {"level": "street"}, ["sup-ya01"]),
        (NoticeKind.ESCALATED, {"level": "community"}, ["com-0101"]),
        (NoticeKind.ESCALATED, {"level": "district"}, []),
        (NoticeKind.ESCALATED, {"level": None}, ["sup-ya01"]),
        (NoticeKind.WHISTLED, {"level": "street"}, ["sup-ya01"]),
        (NoticeKind.WHISTLED, {"level": "community"}, []),
        (NoticeKind.RESOLVED, {}, ["com-0101", "grid-03"]),
        (NoticeKind.CLOSED, {"department_id": None}, ["com-0101", "grid-03"]),
        # 督办, and the decisions on what the department asked for: the department
        (NoticeKind.URGED, {}, ["duty-gs"]),
        (NoticeKind.EXTENSION_DECIDED, {"approved": True, "days": 2}, ["duty-gs"]),
        (NoticeKind.PAUSE_DECIDED, {"approved": False, "pause": "hang"}, ["duty-gs"]),
        (NoticeKind.RESUMED, {}, ["duty-gs"]),
        # a pending request: the supervisors of the area, who decide it
        (NoticeKind.EXTENSION_REQUESTED, {"days": 3}, ["sup-ya01"]),
        (NoticeKind.PAUSE_REQUESTED, {"pause": "defer"}, ["sup-ya01"]),
        (NoticeKind.PAUSE_REQUESTED, {"area_path": "YA/YA02/YA0201/YA0201-01"}, []),
    ],
)
def test_default_audiences(kind, extra, heard):
    got = domain.select_recipients(notice(kind, **extra), DESKS)
    assert [r.id for r in got] == heard


@pytest.mark.parametrize(
    ("sub", "hears"),
    [
        (Subscription("com-0102", ("case.dispatched",)), True),
        (Subscription("com-0102", ("case.overdue",)), False),
        (Subscription("com-0102", ("case.dispatched",), area_path="YA/YA01"), True),
        (
            Subscription("com-0102", ("case.dispatched",), area_path="YA/YA0"),
            False,
        ),  # a prefix only
        (Subscription("com-0102", ("case.dispatched",), department_id="gs"), True),
        (Subscription("com-0102", ("case.dispatched",), department_id="cg"), False),
        (Subscription("com-0102", ("case.dispatched",), categories=("C01",)), True),
        (Subscription("com-0102", ("case.dispatched",), categories=("C02", "E0101")), False),
        (Subscription("com-0102", ("case.dispatched",), priorities=("urgent",)), True),
        (Subscription("com-0102", ("case.dispatched",), priorities=("normal", "minor")), False),
    ],
)
def test_subscriptions_match_type_area_department_category_and_priority(sub, hears):
    got = [r.id for r in domain.select_recipients(notice(NoticeKind.DISPATCHED), DESKS, [sub])]
    assert ("com-0102" in got) is hears and "duty-gs" in got


def test_each_recipient_hears_once_whatever_names_it():
    subs = [
        Subscription("duty-gs", ("case.dispatched",)),
        Subscription("duty-gs", ("case.dispatched",)),
    ]
    got = domain.select_recipients(notice(NoticeKind.DISPATCHED), [*DESKS, DESKS[0]], subs)
    assert [r.id for r in got] == ["duty-gs"]


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_every_event_type_has_a_template_in_both_languages_with_the_facts(kind):
    m = domain.render(
        notice(kind, level="street", clock="resolve", due_at=datetime(2026, 11, 22, 2, tzinfo=UTC)),
        RecipientKind.SUPERVISOR,
        "https://w.example.cn",
    )
    assert "YA20261122-0001" in m.title_zh and "YA20261122-0001" in m.title_en
    for body in (m.body_zh, m.body_en):
        assert "C0103" in body and AREA in body and m.link in body
    assert m.link == f"https://w.example.cn/cases/{CASE_ID}"
    if kind in (NoticeKind.OVERDUE, NoticeKind.WARNING, NoticeKind.ESCALATED):
        assert "2026-11-22 10:00" in m.body_zh and "2026-11-22 10:00" in m.body_en
    if kind is not NoticeKind.CLOSED and kind is not NoticeKind.WHISTLED:
        assert "榆安供水公司" in m.body_zh


@pytest.mark.parametrize(
    ("kind", "extra", "title_zh", "body_zh", "body_en"),
    [
        (
            NoticeKind.URGED,
            {"note": "请今天内处置", "count": 2},
            "【督办】（紧急）案件YA20261122-0001被督办（第2次）",
            "督办意见：请今天内处置。",
            "(#2)",
        ),
        (
            NoticeKind.EXTENSION_REQUESTED,
            {"days": 3, "reason": "需采购配件"},
            "【延期申请】（紧急）案件YA20261122-0001申请延期3个工作日",
            "理由：需采购配件。",
            "asks for 3 more working days",
        ),
        (
            NoticeKind.EXTENSION_DECIDED,
            {"approved": True, "days": 2, "comment": "同意两天"},
            "【延期已批准】（紧急）案件YA20261122-0001延期申请已批准",
            "延期2个工作日",
            "was approved: 2 more working days",
        ),
        (
            NoticeKind.EXTENSION_DECIDED,
            {"approved": False, "days": 0, "comment": "材料不全"},
            "【延期被驳回】（紧急）案件YA20261122-0001延期申请被驳回",
            "批复意见：材料不全。",
            "by the original deadline",
        ),
        (
            NoticeKind.PAUSE_REQUESTED,
            {"pause": "hang", "reason": "待资金"},
            "【挂账申请】（紧急）案件YA20261122-0001申请挂账",
            "理由：待资金。",
            "hang (挂账)",
        ),
        (
            NoticeKind.PAUSE_DECIDED,
            {"pause": "defer", "approved": True},
            "【缓办已批准】（紧急）案件YA20261122-0001缓办申请已批准",
            "时限暂停计时",
            "clocks stand still",
        ),
        (
            NoticeKind.RESUMED,
            {"note": "资金到位"},
            "【恢复办理】（紧急）案件YA20261122-0001已恢复办理",
            "说明：资金到位。",
            "run again",
        ),
    ],
)
def test_urgings_requests_and_decisions_read_right_in_both_languages(
    kind, extra, title_zh, body_zh, body_en
):
    n = notice(kind, **extra)
    m = domain.render(n, RecipientKind.DEPARTMENT)
    assert m.title_zh == title_zh
    assert body_zh in m.body_zh and body_en in m.body_en
    assert m.title_en.startswith("[") and "(urgent)" in m.title_en
    data = domain.webhook_body(
        n, m, event_id="e", recipient_id="r", occurred_at=datetime(2026, 11, 22, tzinfo=UTC)
    )["data"]
    assert {k: data[k] for k in extra if k != "pause"} == {
        k: v for k, v in extra.items() if k != "pause"
    }
    assert data.get("pause_kind") == extra.get("pause")


def test_mutes_silence_defaults_but_not_what_asks_for_action_nor_subscriptions():
    def muted(r: Recipient, *kinds: NoticeKind) -> Recipient:
        return Recipient(
            **{**r.__dict__, "preferences": Preferences(muted=tuple(k.value for k in kinds))}
        )

    dept = muted(DESKS[0], NoticeKind.WARNING, NoticeKind.RESUMED)
    sup = muted(DESKS[1], NoticeKind.OVERDUE)
    desks = [dept, sup, *DESKS[2:]]
    assert domain.select_recipients(notice(NoticeKind.WARNING), desks) == []
    assert [r.id for r in domain.select_recipients(notice(NoticeKind.OVERDUE), desks)] == [
        "duty-gs"
    ]
    assert [r.id for r in domain.select_recipients(notice(NoticeKind.DISPATCHED), desks)] == [
        "duty-gs"
    ]
    # a subscription still delivers what the default no longer does
    sub = Subscription("duty-gs", ("case.deadline_warning",))
    assert [r.id for r in domain.select_recipients(notice(NoticeKind.WARNING), desks, [sub])] == [
        "duty-gs"
    ]
    # a mute of what must be heard (stored before the recipient changed kind) is ignored
    sneaky = muted(DESKS[0], NoticeKind.URGED)
    assert [r.id for r in domain.select_recipients(notice(NoticeKind.URGED), [sneaky])] == [
        "duty-gs"
    ]


@pytest.mark.parametrize(
    ("kind", "muted", "code"),
    [
        (RecipientKind.DEPARTMENT, ("case.dispatched",), "cannot_mute"),
        (RecipientKind.DEPARTMENT, ("case.deadline_warning", "case.urged"), "cannot_mute"),
        (RecipientKind.SUPERVISOR, ("case.extension_requested",), "cannot_mute"),
        (RecipientKind.COMMUNITY, ("case.escalated",), "cannot_mute"),
        (RecipientKind.DEPARTMENT, ("case.reported",), "invalid_muted_events"),
        (RecipientKind.DEPARTMENT, ("case.resumed", "case.resumed"), "invalid_muted_events"),
    ],
)
def test_mutes_are_checked(kind, muted, code):
    with pytest.raises(Invalid) as err:
        domain.check_mutes(kind, muted)
    assert err.value.code == code and err.value.zh.startswith("muted_events：")
    assert domain.check_mutes(RecipientKind.GRID_WORKER, ("case.closed",)) == ("case.closed",)


def test_bad_subscriptions():
    for s in [
        Subscription("a", ()),
        Subscription("a", ("case.reported",)),
        Subscription("a", ("case.overdue",), area_path="YA//x"),
        Subscription("a", ("case.overdue",), categories=("c01",)),
        Subscription("a", ("case.overdue",), priorities=("asap",)),
    ]:
        with pytest.raises(Invalid) as err:
            domain.validate_subscription(s)
        assert err.value.code == "invalid_subscription" and err.value.zh.split("：")[0]


def test_robot_pacing_sends_each_digests_or_waits_for_room():
    now = datetime(2026, 11, 22, 2, 0, 30, tzinfo=UTC)
    sent = [now - timedelta(seconds=s) for s in (10, 20, 70)]  # two inside the minute
    assert domain.pace_robot(1, sent, now, limit=3).plan is RobotPlan.EACH
    assert domain.pace_robot(2, sent, now, limit=3).plan is RobotPlan.DIGEST
    full = domain.pace_robot(5, sent, now, limit=2)
    assert full.plan is RobotPlan.WAIT and full.wait_until == now - timedelta(
        seconds=20
    ) + timedelta(minutes=1)


# --- what each channel is handed -----------------------------------------------------------------


def claim(channel: Channel, locale: str = "zh-CN", n: int = 1):
    from uuid import UUID

    from services.notify.repository import Claim

    note = notice(NoticeKind.DISPATCHED, case_no=f"YA-{n}")
    m = domain.render(note, RecipientKind.DEPARTMENT)
    body = domain.webhook_body(
        note,
        m,
        event_id=CASE_ID,
        recipient_id="duty-gs",
        occurred_at=datetime(2026, 11, 22, tzinfo=UTC),
    )
    r = Recipient(
        id="duty-gs",
        name="供水",
        kind=RecipientKind.DEPARTMENT,
        department_id="gs",
        preferences=Preferences(locale=locale),
    )
    return Claim(
        id=n,
        event_id=UUID(CASE_ID),
        case_id=UUID(CASE_ID),
        type="case.dispatched",
        channel=channel,
        attempts=0,
        position=0,
        urgent=True,
        payload=body,
        recipient=r,
    )


def test_each_channel_gets_the_message_in_the_recipients_language():
    from services.notify.worker import message_for

    hook = message_for(claim(Channel.WEBHOOK))
    assert hook.id == domain.webhook_message_id(CASE_ID, "duty-gs")
    assert hook.data["text"]["en"].startswith("[Dispatched]")  # the whole body, both languages
    assert hook.title.startswith("【派单】") and hook.urgent
    sms = message_for(claim(Channel.SMS, "en"))
    assert sms.title.startswith("[Dispatched]") and sms.locale == "en"
    assert sms.data["case_no"] == "YA-1" and sms.data["department"] == "榆安供水公司"
    digest = message_for(
        claim(Channel.WECOM), digest_of=[claim(Channel.WECOM, n=i) for i in range(1, 4)]
    )
    assert digest.title == "【汇总】3条案件消息" and digest.id.endswith("_digest")
    assert all(f"YA-{i}" in digest.text for i in range(1, 4))
