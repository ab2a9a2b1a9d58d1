"""Where a case came from, and the rules of a resident's report (pure: no I/O, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.intake.domain import CaseStatus, check_rate, check_reopen
from services.intake.domain import sources as domain
from shared.contract import CaseSource
from shared.errors import Conflict, Invalid

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize("source", list(CaseSource))
def test_every_source_has_a_label_and_staff_may_not_claim_proactive(source):
    assert domain.SOURCE_ZH[source]
    if source is CaseSource.PROACTIVE:
        with pytest.raises(Invalid) as err:
            domain.check_staff_source(source)
        assert err.value.code == "invalid_source" and "未诉先办" in err.value.zh
    else:
        domain.check_staff_source(source)


@pytest.mark.parametrize(
    ("contact", "masked"),
    [
        ("13912345678", "139****5678"),
        ("+86 139-1234-5678", "861****5678"),
        ("li.ming@163.com", "l***@163.com"),
        ("12345", "*****"),
        ("  ", None),
        (None, None),
    ],
)
def test_contacts_are_masked(contact, masked):
    assert domain.mask_contact(contact) == masked


def test_the_rate_limit_says_when_the_oldest_report_leaves_the_window():
    assert domain.rate_limit_wait([], 2, HOUR, NOW) is None
    assert domain.rate_limit_wait([NOW - timedelta(minutes=5)], 2, HOUR, NOW) is None
    times = [NOW - timedelta(minutes=50), NOW - timedelta(minutes=5)]
    assert domain.rate_limit_wait(times, 2, HOUR, NOW) == 10 * 60 + 1
    old = [NOW - timedelta(minutes=61), NOW - timedelta(minutes=5)]  # one has left the window
    assert domain.rate_limit_wait(old, 2, HOUR, NOW) is None
    assert domain.rate_limit_wait([NOW], 1, HOUR, NOW) == 3601


def test_only_a_report_to_verify_can_be_verified():
    domain.check_verify(CaseStatus.TO_VERIFY)
    for status in set(CaseStatus) - {CaseStatus.TO_VERIFY}:
        with pytest.raises(Conflict):
            domain.check_verify(status)


def test_a_dismissal_names_the_duplicate_or_says_why():
    with pytest.raises(Invalid, match="duplicate_of"):
        domain.check_dismissal(domain.DismissReason.DUPLICATE, None, None)
    with pytest.raises(Invalid, match="note"):
        domain.check_dismissal(domain.DismissReason.OTHER, "  ", None)
    domain.check_dismissal(domain.DismissReason.NOT_FOUND, None, None)
    notes = domain.dismissal_notes("duplicate", "已在处理", "YA20261205-0001")
    assert notes == (
        "不予受理：重复上报（原案件 YA20261205-0001）。已在处理 / "
        "not taken on: a duplicate of an existing case (YA20261205-0001)"
    )
    assert domain.dismissal_notes("not_public", None, None).startswith("不予受理：不属于公共事务")


def test_a_dismissed_report_is_neither_rated_nor_reopened():
    with pytest.raises(Conflict):
        check_rate(CaseStatus.CLOSED, domain.DISMISSED, already_rated=False)
    with pytest.raises(Conflict):
        check_reopen(CaseStatus.CLOSED, domain.DISMISSED, NOW, NOW, 7)
    check_rate(CaseStatus.CLOSED, "verified", already_rated=False)
