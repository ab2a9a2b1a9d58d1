"""What the GeoReport rules share: limits, the urgency vocabulary, the refusal error."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta, timezone

from shared.errors import DomainError

MAX_WINDOW = timedelta(days=90)  # GeoReport: a query may not span more than 90 days
MAX_PAGE_SIZE = 1000  # GeoReport: "first 1000 requests returned"
CHINA = timezone(timedelta(hours=8), "CST")  # the times we show (China has no DST)

# 急事急议、小事小议: attribute[priority] → our Priority values.
PRIORITIES = {"urgent": "急", "normal": "一般", "minor": "小"}

# service_notice: what happens next, by urgency.
NOTICES = {
    "urgent": "急事急议：已受理，社区将立即核实并召集相关部门处置。 / Urgent: received; the "
    "community verifies at once and convenes the departments concerned.",
    "normal": "已受理：网格员将现场核实，网格内能解决的就地解决，解决不了的由社区吹哨、部门报到。"
    " / Received: the grid worker checks on site; what the grid cannot fix, the "
    "community whistles to the departments.",
    "minor": "小事小议：已受理，由网格员在网格内就地处理。 / Minor: received; the grid worker "
    "handles it within the grid.",
}

Problem = tuple[str, str]  # (Chinese, English)


class Refused(DomainError):
    """A GeoReport request we cannot take: one or more problems, each (zh, en); the answer
    lists them all (GeoReport's error array)."""

    status_code = 400
    code = "bad_request"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("；".join(p[0] for p in problems), "; ".join(p[1] for p in problems))
        self.problems = problems


def field(form: Mapping[str, str], name: str) -> str | None:
    """GeoReport: an empty parameter is the same as one not sent."""
    value = (form.get(name) or "").strip()
    return value or None
