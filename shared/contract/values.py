"""The values events carry that have a fixed set of meanings. Each is a ``StrEnum``: on the
wire a plain string, as before, but a producer cannot send one the consumers do not know, and
every service reads the same set (the services' own labels — 主办, 签收时限… — stay with the
screens that show them)."""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    """急事急议、小事小议: urgency decides the clocks."""

    URGENT = "urgent"
    NORMAL = "normal"
    MINOR = "minor"


class Level(StrEnum):
    """Who blows the whistle (吹哨), and who an escalation (逐级上报) reaches, in the order of
    the ladder."""

    COMMUNITY = "community"  # 社区
    STREET = "street"  # 街道
    DISTRICT = "district"  # 区 (区综合指挥平台)


class Clock(StrEnum):
    """An assignment's deadlines."""

    SIGN_FOR = "sign_for"  # 签收/报到时限
    ON_SITE = "on_site"  # 到场时限 (urgent cases)
    RESOLVE = "resolve"  # 办结时限


class AssignmentRole(StrEnum):
    LEAD = "lead"  # 主办
    CO = "co"  # 协办


class DispatchBasis(StrEnum):
    """What chose a department: kept on the assignment, so a dispute can be settled."""

    NAMED = "named"  # 吹哨点名
    RULE = "rule"  # 派单规则
    AREA_DEFAULT = "area_default"  # 分类默认责任主体（物业企业、街道办事处…）
    LIAISON = "liaison"  # 包联单位兜底
    MANUAL = "manual"  # 人工派单
    TRANSFER = "transfer"  # 转办
    REWORK = "rework"  # 返工


class PauseKind(StrEnum):
    """Why a case's clock may stand still, as the digital-city standard names it."""

    HANG = "hang"  # 挂账: cannot be solved now (funds, planning, a court case…), kept on the books
    DEFER = "defer"  # 缓办: handling put off for a stated reason (season, weather, an event…)


class PhotoKind(StrEnum):
    BEFORE = "before"  # 整改前
    AFTER = "after"  # 整改后


class Resolution(StrEnum):
    """How a case was closed."""

    VERIFIED = "verified"  # 核查通过: checked on site after the departments' work
    ON_SPOT = "on_spot"  # 随手做, 小事不出网格: fixed by the grid worker on the spot


class RatingChannel(StrEnum):
    """Who entered a resident's rating (群众评单)."""

    GRID_WORKER = "grid_worker"  # 网格员代录
    LINK = "link"  # 一次性评价链接: the resident, through a one-time link


class CaseSource(StrEnum):
    """Where a case came from (案件来源): counted in the KPIs, so a district sees how much its
    grid workers find themselves and how much residents and the hotline bring."""

    GRID_PATROL = "grid_patrol"  # 网格巡查: the grid worker found it on his rounds
    RESIDENT = "resident"  # 群众上报: a resident reported it directly (checked by the grid worker)
    HOTLINE = "hotline"  # 12345热线: imported from the 12345 hotline (接诉即办)
    WECHAT_GROUP = "wechat_group"  # 微信群: raised in a micro-grid or building chat group
    PROACTIVE = (
        "proactive"  # 未诉先办: opened by the community from a hotspot before anyone complained
    )
