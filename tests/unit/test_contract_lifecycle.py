"""Which events move a case's status: declared by event class in the contract, read by any
version of the event."""

from __future__ import annotations

from typing import ClassVar
from uuid import uuid4

from shared.contract import (
    EVENT_TYPES,
    STATUS_OF_EVENT,
    CaseClosed,
    CaseProgressed,
    CaseSignedFor,
    Priority,
    Resolution,
    status_of,
)
from shared.lifecycle import CaseStatus

FACTS = {
    "case_no": "YA20261205-0001",
    "area_path": "YA/YA01/YA0101/YA0101-03",
    "category": "road",
    "priority": Priority.NORMAL,
}


def test_every_status_is_reached_by_a_known_event():
    assert set(STATUS_OF_EVENT) <= set(EVENT_TYPES.values())
    # to_verify (待核实) is intake's alone: a resident's report enters the loop, and the
    # events, only once the grid worker has checked it on site
    assert set(STATUS_OF_EVENT.values()) == set(CaseStatus) - {CaseStatus.TO_VERIFY}


def test_status_of_an_event():
    closed = CaseClosed(**FACTS, note="已核查", resolution=Resolution.VERIFIED)
    assert status_of(closed) is CaseStatus.CLOSED
    signed = CaseSignedFor(**FACTS, assignment_id=uuid4(), department_id="cg")
    assert status_of(signed) is CaseStatus.SIGNED_FOR
    progressed = CaseProgressed(**FACTS, assignment_id=uuid4(), department_id="cg", note="进行中")
    assert status_of(progressed) is None  # on the timeline, the status stays


def test_a_newer_version_moves_the_status_as_the_first_did():
    class CaseClosedV2(CaseClosed):
        VERSION: ClassVar[int] = 2

    v2 = CaseClosedV2(**FACTS, note="已核查", resolution=Resolution.VERIFIED)
    assert status_of(v2) is CaseStatus.CLOSED
