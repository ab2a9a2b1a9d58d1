"""Tracking's HTTP routes: a case's history (``history``), the supervisors' boards
(``boards``) and the SLA reference data (``sla``: working calendar, policy versions)."""

from fastapi import APIRouter

from services.tracking.api import backtest, boards, export, grid_work, history, integrity, kpi, sla

router = APIRouter()
router.include_router(history.router)
router.include_router(boards.router)
router.include_router(sla.router)
router.include_router(backtest.router)
router.include_router(kpi.router)
router.include_router(grid_work.router)
router.include_router(integrity.router)
router.include_router(export.router)
