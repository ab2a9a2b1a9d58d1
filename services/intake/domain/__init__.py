"""Intake's rules, no I/O and no clock (``now`` is passed in): the case as the reporter
sees it (``cases``, re-exported here), the jurisdiction tree and its geometry, photos and
their images, the Open311 GeoReport v2 mapping."""

from services.intake.domain.cases import (
    STATUS_ZH as STATUS_ZH,
    CaseStatus as CaseStatus,
    advance as advance,
    MERGED as MERGED,
    WITH_COMMUNITY as WITH_COMMUNITY,
    LEVEL_ZH as LEVEL_ZH,
    check_whistle_level as check_whistle_level,
    check_whistle as check_whistle,
    check_close as check_close,
    format_case_no as format_case_no,
    check_fix_on_spot as check_fix_on_spot,
    check_rework as check_rework,
    check_rate as check_rate,
    check_reopen as check_reopen,
    check_merge as check_merge,
)
