"""Tracking's HTTP routes: supervisors' reads (``supervision``: case histories, the overdue
board) and the SLA reference data (``sla``: working calendar, policy versions)."""

from fastapi import APIRouter

from services.tracking.api import sla, supervision

router = APIRouter()
router.include_router(supervision.router)
router.include_router(sla.router)
