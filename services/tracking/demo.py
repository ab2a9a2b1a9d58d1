"""Tracking's demo reference data, and loading it: the working calendar, the SLA policy
versions and the red/black list's thresholds (idempotent: a calendar and thresholds only if
none are set, versions only if not there yet).

The working calendar of an office in China (Asia/Shanghai, 08:30–12:00 and
13:30–17:30 Monday to Friday) with the public holidays and make-up working days of 2026 and
2027, and one policy version for the demo catalogue (shared.demo.CATEGORIES).

2026 is the State Council's notice 国务院办公厅关于2026年部分节假日安排的通知 (4 November 2025),
written out by hand. 2027 is PROVISIONAL: its notice was not available when this was written,
so only the statutory days of 全国年节及纪念日放假办法 (as revised in 2024) are listed —
元旦 1 Jan, 春节 除夕 to 初三 (5–8 Feb), 清明 5 Apr, 劳动节 1–2 May, 端午 9 Jun, 中秋 15 Sep,
国庆 1–3 Oct — without the compensatory days off (补休) and make-up working days (调休上班)
the notice will add. Replace ``HOLIDAYS_2027`` and ``MAKEUP_DAYS_2027`` from the notice.

Policies are keyed by 大类 codes, with a few 小类 overrides; every other category — including
the ones the catalogue grows — falls back to its 大类, then to the defaults per priority.
"""

from __future__ import annotations

from typing import Any

from services.tracking.domain.calendar import WorkingCalendar
from services.tracking.domain.calendar_data import calendar_from_data
from services.tracking.domain.policy import PolicyVersion
from services.tracking.domain.policy_data import version_from_data
from services.tracking.handlers import kpi, sla
from shared import db
from shared.settings import BaseServiceSettings

OFFICE_DAY = [["08:30", "12:00"], ["13:30", "17:30"]]  # 7.5 working hours

HOLIDAYS_2026 = [
    "2026-01-01/2026-01-03",  # 元旦
    "2026-02-15/2026-02-23",  # 春节
    "2026-04-04/2026-04-06",  # 清明节
    "2026-05-01/2026-05-05",  # 劳动节
    "2026-06-19/2026-06-21",  # 端午节
    "2026-09-25/2026-09-27",  # 中秋节
    "2026-10-01/2026-10-07",  # 国庆节
]
MAKEUP_DAYS_2026 = [
    "2026-01-04",
    "2026-02-14",
    "2026-02-28",
    "2026-05-09",
    "2026-09-20",
    "2026-10-10",
]

HOLIDAYS_2027 = [  # provisional: statutory days only (see the module's docstring)
    "2027-01-01",  # 元旦
    "2027-02-05/2027-02-08",  # 春节: 除夕 to 初三
    "2027-04-05",  # 清明节
    "2027-05-01/2027-05-02",  # 劳动节
    "2027-06-09",  # 端午节
    "2027-09-15",  # 中秋节
    "2027-10-01/2027-10-03",  # 国庆节
]
MAKEUP_DAYS_2027: list[str] = []
PROVISIONAL_YEARS = frozenset({2027})

CALENDAR_DATA: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "hours": {day: OFFICE_DAY for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": HOLIDAYS_2026 + HOLIDAYS_2027,
    "makeup_days": MAKEUP_DAYS_2026 + MAKEUP_DAYS_2027,
    "makeup_hours": OFFICE_DAY,
}


def demo_calendar() -> WorkingCalendar:
    return calendar_from_data(CALENDAR_DATA)


# --- policies --------------------------------------------------------------------------------

# Escalation ladders: community at the deadline, then street, then district; then repeat.
URGENT_LADDER = {
    "steps": [["community", "0 minutes"], ["street", "30 minutes"], ["district", "120 minutes"]],
    "repeat_every": "1 hours",
}
NORMAL_LADDER = {
    "steps": [
        ["community", "0 working_hours"],
        ["street", "4 working_hours"],
        ["district", "15 working_hours"],
    ],
    "repeat_every": "1 working_day",
}
MINOR_LADDER = {
    "steps": [
        ["community", "0 working_days"],
        ["street", "2 working_days"],
        ["district", "5 working_days"],
    ],
    "repeat_every": "5 working_days",
}


def urgent(
    sign_for: str = "30 minutes",
    on_site: str = "2 hours",
    resolve: str = "24 hours",
    ratio: float = 0.8,
) -> dict[str, Any]:
    """急事急议: calendar time, like Beijing 12345's 30-minute response to urgent whistles."""
    return {
        "sign_for": sign_for,
        "on_site": on_site,
        "resolve": resolve,
        "warning_ratio": ratio,
        "ladder": URGENT_LADDER,
    }


def normal(
    sign_for: str = "2 working_hours", resolve: str = "5 working_days", ratio: float = 0.8
) -> dict[str, Any]:
    return _no_on_site(sign_for, resolve, ratio, NORMAL_LADDER)


def minor(
    sign_for: str = "1 working_day", resolve: str = "10 working_days", ratio: float = 0.8
) -> dict[str, Any]:
    """小事小议: relaxed clocks, slow escalation."""
    return _no_on_site(sign_for, resolve, ratio, MINOR_LADDER)


def _no_on_site(
    sign_for: str, resolve: str, ratio: float, ladder: dict[str, Any]
) -> dict[str, Any]:
    """A policy without an on-site limit (到场时限): only urgent cases have one."""
    return {"sign_for": sign_for, "resolve": resolve, "warning_ratio": ratio, "ladder": ladder}


VERSION_1: dict[str, Any] = {
    "version": 1,
    "effective_from": "2026-01-01T00:00:00+08:00",
    "note": "演示策略：按大类设定，少数小类单独设定",
    "defaults": {"urgent": urgent(), "normal": normal(), "minor": minor()},
    "rules": {
        # 大类
        "C01": {
            "urgent": urgent(on_site="1 hours", resolve="12 hours"),  # 公用设施
            "normal": normal(resolve="3 working_days"),
        },
        "C02": {
            "normal": normal(resolve="7 working_days"),  # 道路交通
            "minor": minor(resolve="15 working_days"),
        },
        "E01": {
            "normal": normal(resolve="3 working_days"),  # 市容环境
            "minor": minor(resolve="5 working_days"),
        },
        "E02": {
            "urgent": urgent(
                sign_for="15 minutes", on_site="1 hours", resolve="12 hours", ratio=0.7
            ),  # 安全隐患
            "normal": normal(sign_for="1 working_hours", resolve="2 working_days", ratio=0.7),
        },
        "E03": {
            "normal": normal(resolve="10 working_days"),  # 矛盾纠纷: mediation
            "minor": minor(resolve="15 working_days"),
        },
        "C03": {"normal": normal(resolve="2 working_days")},  # 市容环境设施
        "C04": {"urgent": urgent(on_site="1 hours")},  # 园林绿化: 倒伏
        "C05": {
            "urgent": urgent(on_site="1 hours", resolve="12 hours"),  # 房屋及小区设施
            "normal": normal(resolve="3 working_days"),
        },
        "E04": {"normal": normal(sign_for="1 working_hours", resolve="1 working_day")},  # 街面秩序
        "E05": {"normal": normal(sign_for="1 working_hours", resolve="3 working_days")},  # 民生服务
        # 小类
        "C0102": {"urgent": urgent(on_site="30 minutes", resolve="12 hours")},  # 井盖缺失
        "C0103": {"normal": normal(resolve="2 working_days")},  # 供水管道漏水
        "C0104": {
            "urgent": urgent(
                sign_for="10 minutes",
                on_site="30 minutes",  # 燃气管道隐患
                resolve="12 hours",
                ratio=0.7,
            )
        },
        "C0501": {
            "urgent": urgent(
                sign_for="15 minutes",
                on_site="30 minutes",  # 电梯故障 (困人)
                resolve="12 hours",
            )
        },
        "E0201": {
            "urgent": urgent(
                sign_for="10 minutes",
                on_site="30 minutes",  # 消防隐患
                resolve="12 hours",
                ratio=0.7,
            ),
            "normal": normal(sign_for="1 working_hours", resolve="1 working_day", ratio=0.7),
        },
    },
}


def demo_policy_versions() -> list[PolicyVersion]:
    return [version_from_data(VERSION_1)]


# --- the red/black list, and loading it all --------------------------------------------

# 红黑榜: red when on time and liked, black when slow to answer, often pushing cases back or
# disliked — judged only with at least 5 assignments in the period.
DEMO_THRESHOLDS = {
    "min_received": 5,
    "red": [
        ["response_rate", ">=", 0.9],
        ["resolution_rate", ">=", 0.8],
        ["satisfaction_rate", ">=", 0.9],
    ],
    "black": [
        ["response_rate", "<", 0.6],
        ["rejections", ">=", 3],
        ["satisfaction_rate", "<", 0.6],
    ],
}


async def seed_demo(settings: BaseServiceSettings) -> None:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        await sla.seed(conn, demo_calendar(), demo_policy_versions(), by="demo")
        await kpi.seed_thresholds(conn, DEMO_THRESHOLDS, by="demo")
    finally:
        await conn.close()
