"""SLA policies: validation (limits, warning ratio, escalation ladder, versions), policies as
data, lookup falling back 小类 → 大类 → default, version pinning, and the demo policies."""

from __future__ import annotations

import ast
import copy
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.tracking import demo
from services.tracking.domain.policy import (
    DEFAULT,
    Limit,
    Unit,
    hours,
    lineage,
    minutes,
    pin_policy,
    policy_for,
    policy_in_force,
    working_days,
    working_hours,
)
from services.tracking.domain.policy_data import (
    parse_limit,
    pinned_from_data,
    pinned_to_data,
    policy_from_data,
    policy_to_data,
    version_from_data,
    version_to_data,
)
from services.tracking.domain.timeline import CALENDAR_TIME
from services.tracking.domain.validate import check_versions
from shared import demo as shared_demo
from shared.contract.values import Clock, Level
from shared.errors import Invalid

SH = ZoneInfo("Asia/Shanghai")
PURE_SHARED = ("shared.errors", "shared.contract", "shared.lifecycle", "shared.clock")
CAL = demo.demo_calendar()
VERSIONS = demo.demo_policy_versions()
PARENTS = {code: parent for code, _, parent in shared_demo.CATEGORIES}


def normal_policy(**changes) -> dict:
    data = copy.deepcopy(demo.normal())
    data.update(changes)
    return data


def refused(call, field: str, zh: str, code: str = "invalid_policy") -> Invalid:
    with pytest.raises(Invalid) as err:
        call()
    assert err.value.code == code
    message = err.value.message("zh")
    assert field in message and zh in message, message
    assert message.index(field) < message.index("：")  # the field first, then the reason
    assert err.value.message("en")
    return err.value


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "label"),
    [
        ("30 minutes", minutes(30), "30分钟"),
        ("2 hours", hours(2), "2小时"),
        ("2 working_hours", working_hours(2), "2个工作小时"),
        ("1 working_day", working_days(1), "1个工作日"),
        ("5 working_days", working_days(5), "5个工作日"),
        ("90 working_minutes", Limit(90, Unit.MINUTES, True), "90个工作分钟"),
        ("3 days", Limit(3, Unit.DAYS, False), "3天"),
    ],
)
def test_durations_as_data(text, limit, label):
    assert parse_limit(text, "x") == limit
    assert str(limit) == label


def test_a_working_day_is_the_standard_day_and_a_calendar_day_is_24_hours():
    assert working_days(5).duration(CAL) == timedelta(hours=37.5)
    assert Limit(2, Unit.DAYS, False).duration(CALENDAR_TIME) == timedelta(hours=48)
    assert working_hours(2).duration(CAL) == timedelta(hours=2)


@pytest.mark.parametrize("text", ["2 weeks", "two hours", "2.5 hours", "2", "", "hours 2"])
def test_bad_durations_are_refused(text):
    refused(lambda: parse_limit(text, "policy.sign_for"), "policy.sign_for", "不是有效时长")


# --- policy validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "zh"),
    [
        ({"sign_for": "0 working_hours"}, "policy.sign_for", "时限必须大于0"),
        ({"resolve": "-5 working_days"}, "policy.resolve", "时限必须大于0"),
        ({"on_site": "0 minutes"}, "policy.on_site", "时限必须大于0"),
        ({"warning_ratio": 1.0}, "policy.warning_ratio", "预警比例须大于0且小于1"),
        ({"warning_ratio": 1.2}, "policy.warning_ratio", "预警落在时限之后"),
        ({"warning_ratio": 0}, "policy.warning_ratio", "预警比例须大于0且小于1"),
        ({"warning_ratio": "0.8"}, "policy.warning_ratio", "预警比例"),
        ({"warning_ratio": True}, "policy.warning_ratio", "预警比例"),
        ({"ladder": {"steps": []}}, "policy.ladder.steps", "至少要有一级"),
        (
            {
                "ladder": {
                    "steps": [["community", "4 working_hours"], ["street", "4 working_hours"]]
                }
            },
            "policy.ladder.steps[1]",
            "逐级递增",
        ),
        (
            {
                "ladder": {
                    "steps": [["community", "4 working_hours"], ["street", "2 working_hours"]]
                }
            },
            "policy.ladder.steps[1]",
            "逐级递增",
        ),
        (
            {
                "ladder": {
                    "steps": [["street", "0 working_hours"], ["community", "4 working_hours"]]
                }
            },
            "policy.ladder.steps[1]",
            "逐级向上",
        ),
        (
            {"ladder": {"steps": [["community", "0 working_hours"], ["street", "1 working_day"]]}},
            "policy.ladder.steps[1]",
            "同一计时单位",
        ),
        (
            {"ladder": {"steps": [["community", "-1 working_hours"]]}},
            "policy.ladder.steps[0].after",
            "不能为负数",
        ),
        (
            {"ladder": {"steps": [["mayor", "0 working_hours"]]}},
            "policy.ladder.steps[0].level",
            "未知层级",
        ),
        (
            {"ladder": {"steps": [["community", "0 hours"]], "repeat_every": "0 hours"}},
            "policy.ladder.repeat_every",
            "时限必须大于0",
        ),
        (
            {"ladder": {"steps": [["community", "0 hours"]], "every": "1 hours"}},
            "policy.ladder.every",
            "未知字段",
        ),
        ({"sign_for": None}, "policy.sign_for", "必填"),
        ({"resolve_in": "5 working_days"}, "policy.resolve_in", "未知字段"),
    ],
)
def test_bad_policies_are_refused_naming_the_field(changes, field, zh):
    refused(lambda: policy_from_data(normal_policy(**changes)), field, zh)


def test_a_good_policy_round_trips_through_data():
    policy = policy_from_data(demo.urgent())
    assert policy.sign_for == minutes(30) and policy.on_site == hours(2)
    assert [s.level for s in policy.ladder.steps] == [Level.COMMUNITY, Level.STREET, Level.DISTRICT]
    assert policy_from_data(policy_to_data(policy)) == policy
    assert set(policy.clocks()) == {Clock.SIGN_FOR, Clock.ON_SITE, Clock.RESOLVE}
    assert set(policy_from_data(demo.normal()).clocks()) == {Clock.SIGN_FOR, Clock.RESOLVE}


# --- versions -----------------------------------------------------------------------------------


def version_data(number: int, effective_from: str, **changes) -> dict:
    data = copy.deepcopy(demo.VERSION_1)
    data.update(version=number, effective_from=effective_from, **changes)
    return data


V1 = version_from_data(version_data(1, "2026-01-01T00:00:00+08:00"))
V2 = version_from_data(
    version_data(
        2,
        "2026-03-01T00:00:00+08:00",
        defaults={
            "urgent": demo.urgent(),
            "normal": demo.normal(resolve="3 working_days"),
            "minor": demo.minor(),
        },
        rules={"E01": {"normal": demo.normal(resolve="2 working_days")}},
    )
)


@pytest.mark.parametrize(
    ("changes", "field", "zh"),
    [
        (
            {"defaults": {"urgent": demo.urgent(), "normal": demo.normal()}},
            "versions[1].defaults",
            "缺少优先级 minor 的默认策略",
        ),
        (
            {
                "defaults": {
                    "urgent": demo.urgent(),
                    "normal": demo.normal(),
                    "minor": demo.minor(),
                    "low": demo.minor(),
                }
            },
            "versions[1].defaults.low",
            "未知字段",
        ),
        (
            {"rules": {"E01": {"critical": demo.urgent()}}},
            "versions[1].rules.E01.critical",
            "未知字段",
        ),
        (
            {"rules": {"E01": {"normal": demo.normal(sign_for="0 working_hours")}}},
            "versions[1].rules.E01.normal.sign_for",
            "时限必须大于0",
        ),
        ({"effective_from": "2026-01-01T00:00:00"}, "versions[1].effective_from", "带时区"),
        ({"effective_from": "next monday"}, "versions[1].effective_from", "带时区"),
        ({"version": 0}, "version", "正整数"),
        ({"version": "1"}, "version", "正整数"),
        ({"policies": {}}, "version.policies", "未知字段"),
    ],
)
def test_bad_versions_are_refused(changes, field, zh):
    data = version_data(1, "2026-01-01T00:00:00+08:00")
    data.update(changes)
    refused(lambda: version_from_data(data), field, zh)


def test_version_round_trips_through_data():
    assert version_from_data(version_to_data(V2)) == V2


def test_two_versions_in_force_at_once_or_repeated_or_out_of_order_are_refused():
    same_time = version_from_data(version_data(2, "2026-01-01T00:00:00+08:00"))
    refused(lambda: check_versions([V1, same_time]), "versions[2].effective_from", "生效时间重叠")
    same_time_other_zone = version_from_data(version_data(2, "2025-12-31T16:00:00+00:00"))
    refused(
        lambda: check_versions([V1, same_time_other_zone]),
        "versions[2].effective_from",
        "生效时间重叠",
    )
    refused(
        lambda: check_versions(
            [V1, version_from_data(version_data(1, "2026-02-01T00:00:00+08:00"))]
        ),
        "version",
        "版本号 1 重复",
    )
    earlier_v3 = version_from_data(version_data(3, "2025-06-01T00:00:00+08:00"))
    refused(
        lambda: check_versions([V1, earlier_v3]),
        "versions[1].effective_from",
        "版本号须随生效时间递增",
    )
    refused(lambda: check_versions([]), "versions", "至少要有一个策略版本")
    check_versions([V1, V2])  # fine


def test_the_version_in_force_runs_until_the_next_one():
    assert policy_in_force([V1, V2], datetime(2026, 2, 28, 23, 59, tzinfo=SH)) is V1
    assert policy_in_force([V2, V1], datetime(2026, 3, 1, 0, 0, tzinfo=SH)) is V2
    assert policy_in_force([V1, V2], datetime(2027, 1, 1, tzinfo=SH)) is V2
    with pytest.raises(Invalid) as err:
        policy_in_force([V2], datetime(2026, 2, 1, tzinfo=SH))
    assert err.value.code == "no_policy_in_force"
    assert err.value.message("zh") == "2026-02-01T00:00:00+08:00 时没有生效的时限策略"
    assert "no SLA policy version is in force" in err.value.message("en")


# --- lookup and pinning -------------------------------------------------------------------------


def test_lineage_uses_the_catalogue_and_else_the_code_convention():
    assert lineage("E0103", PARENTS) == ("E0103", "E01")
    assert lineage("E01", PARENTS) == ("E01",)
    assert lineage("E0199") == ("E0199", "E01")  # not in any catalogue yet: GB/T convention
    assert lineage("X-7", {"X-7": "X", "X": None}) == ("X-7", "X")
    assert lineage("a", {"a": "b", "b": "a"}) == ("a", "b")  # a cycle is cut


@pytest.mark.parametrize(
    ("category", "priority", "matched"),
    [
        ("E0201", "urgent", "E0201"),  # 消防隐患: its own rule
        ("E0202", "urgent", "E02"),  # 电动车违规充电: its 大类's
        ("E0202", "minor", DEFAULT),  # no 安全隐患 rule for minor: the default
        ("C0102", "urgent", "C0102"),
        ("C0101", "urgent", "C01"),
        ("C0101", "minor", DEFAULT),
        ("E0301", "normal", "E03"),
        ("E0199", "normal", "E01"),  # a 小类 the catalogue may add: its 大类 already has rules
        ("C0501", "urgent", "C0501"),  # 电梯故障
        ("C0502", "urgent", "C05"),
        ("Z0101", "normal", DEFAULT),  # an unknown class altogether
    ],
)
def test_policy_lookup_falls_back_leaf_parent_default(category, priority, matched):
    version = VERSIONS[0]
    found, policy = policy_for(version, category, priority, PARENTS)
    assert found == matched
    expected = (
        version.defaults[priority] if matched == DEFAULT else version.rules[(matched, priority)]
    )
    assert policy is expected


def test_unknown_priority_is_refused():
    refused(lambda: policy_for(VERSIONS[0], "E0103", "asap"), "priority", "未知优先级")


def test_pinning_keeps_an_old_case_on_the_version_in_force_at_its_dispatch():
    dispatched = datetime(2026, 2, 20, 10, tzinfo=SH)
    before = pin_policy([V1], "E0301", "normal", dispatched, PARENTS)
    after = pin_policy([V1, V2], "E0301", "normal", dispatched, PARENTS)  # v2 added later
    assert before == after and after.version == 1
    assert after.policy.resolve == working_days(10)  # E03's rule in v1 (v2 has none)
    # stored as a snapshot, the pinned policy survives any later edit of the versions
    snapshot = pinned_to_data(after)
    assert pinned_from_data(snapshot) == after
    later = pin_policy([V1, V2], "E0301", "normal", datetime(2026, 3, 2, 10, tzinfo=SH), PARENTS)
    assert (later.version, later.matched, later.policy.resolve) == (2, DEFAULT, working_days(3))
    assert pin_policy(
        [V1, V2], "E0103", "normal", datetime(2026, 3, 2, 10, tzinfo=SH), PARENTS
    ).policy.resolve == working_days(2)


# --- the demo policies --------------------------------------------------------------------------


def test_demo_policies_cover_every_demo_category_and_priority():
    version = VERSIONS[0]
    check_versions(VERSIONS)
    for code, _, _ in shared_demo.CATEGORIES:
        for priority in ("urgent", "normal", "minor"):
            _, policy = policy_for(version, code, priority, PARENTS)
            assert policy.sign_for.amount > 0
    known = set(PARENTS)
    assert {code for code, _ in version.rules} <= known  # no rule for a category that is not


def test_demo_policy_figures():
    version = VERSIONS[0]
    urgent, normal, minor = (version.defaults[p] for p in ("urgent", "normal", "minor"))
    assert (urgent.sign_for, urgent.on_site, urgent.resolve) == (minutes(30), hours(2), hours(24))
    assert (normal.sign_for, normal.resolve) == (working_hours(2), working_days(5))
    assert (minor.sign_for, minor.resolve) == (working_days(1), working_days(10))
    assert normal.on_site is None and urgent.warning_ratio == 0.8
    assert version.rules[("E0201", "urgent")].sign_for == minutes(10)  # 消防隐患
    assert version.rules[("C0501", "urgent")].on_site == minutes(30)  # 电梯困人


def test_domain_modules_are_pure():
    """Standard library (zoneinfo included), shared.errors, the contract's vocabulary (and
    shared.lifecycle's) and each other: nothing else."""
    folder = Path(__file__).resolve().parents[2] / "services" / "tracking" / "domain"
    allowed = set(sys.stdlib_module_names) | {"shared", "services"}
    for path in folder.glob("*.py"):
        text = path.read_text()
        assert "datetime.now" not in text and ".now()" not in text, path.name
        for node in ast.walk(ast.parse(text)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] in allowed, (path.name, name)
                if name.startswith(("shared", "services")):
                    assert name.startswith(PURE_SHARED) or name.startswith(
                        "services.tracking.domain"
                    ), (
                        path.name,
                        name,
                    )
