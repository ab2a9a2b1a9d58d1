"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) mapped onto our cases: pure
rules — which categories are services, how a form becomes a report, how a case reads as a
service request. Standard library (and shared's error types) only; no I/O, no clock.

| GeoReport            | ours                                                          |
| -------------------- | ------------------------------------------------------------- |
| service_code         | a leaf category of the catalogue (事件分类小类)                |
| group                | the parent category's name (大类)                              |
| service_request_id   | the case number (YA20261122-0042); our UUID is accepted too    |
| token                | the case's UUID (cases are created synchronously)             |
| status               | ``closed`` iff our status is closed (已结案), else ``open``      |
| status_notes         | the Chinese status label (已上报, 已吹哨, ...)                  |
| agency_responsible   | the departments on the case, else the case's community        |
| expected_datetime    | the nearest open deadline (tracking's clocks, kept by intake)  |
| attribute[grid_code] | the grid (网格); without it, the grid whose boundary holds lat/long |
| attribute[priority]  | urgent 急 / normal 一般 / minor 小 (急事急议, 小事小议)          |
"""

from services.intake.domain.open311.common import (
    MAX_PAGE_SIZE,
    MAX_WINDOW,
    NOTICES,
    PRIORITIES,
    Refused,
)
from services.intake.domain.open311.filing import (
    NewRequest,
    filed,
    filed_by_resident,
    parse_new_request,
    reporter_name,
)
from services.intake.domain.open311.reading import (
    CaseView,
    RequestQuery,
    agency_responsible,
    is_receipt,
    open_or_closed,
    parse_query,
    parse_ref,
    service_request,
    token_answer,
    token_id,
    w3,
)
from services.intake.domain.open311.services import (
    Category,
    discovery,
    find_service,
    service_definition,
    services,
)

__all__ = [
    "MAX_PAGE_SIZE",
    "MAX_WINDOW",
    "NOTICES",
    "PRIORITIES",
    "CaseView",
    "Category",
    "NewRequest",
    "Refused",
    "RequestQuery",
    "agency_responsible",
    "discovery",
    "filed",
    "filed_by_resident",
    "find_service",
    "is_receipt",
    "open_or_closed",
    "parse_new_request",
    "parse_query",
    "parse_ref",
    "reporter_name",
    "service_definition",
    "service_request",
    "services",
    "token_answer",
    "token_id",
    "w3",
]
