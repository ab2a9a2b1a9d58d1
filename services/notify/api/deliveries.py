"""The delivery log and replays."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from services.notify import handlers
from shared.dto import fill
from shared.service import Pool
from services.notify.api.common import Admin
from services.notify.domain import (
    Channel,
    DeliveryStatus,
)
from services.notify.repository import Delivery

router = APIRouter(tags=["deliveries"])


class DeliveryOut(BaseModel):
    id: int
    event_id: UUID
    case_id: UUID
    type: str
    recipient_id: str
    channel: Channel
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    last_code: str | None = Field(
        description="the last attempt's outcome: HTTP 503, errcode 45009, smtp 451, timeout…"
    )
    next_attempt_at: datetime
    replays: int
    created_at: datetime
    sent_at: datetime | None
    position: int | None = Field(description="the channel's place in the recipient's list")
    urgent: bool
    fallback_from: int | None = Field(description="the delivery whose channel gave up")
    digest_id: int | None = Field(description="digested: the delivery that carried it")

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return fill(cls, d)


@router.get(
    "/deliveries",
    response_model=list[DeliveryOut],
    summary="The delivery log: channel, status, attempts, last error",
)
async def list_deliveries(
    who: Admin,
    db: Pool,
    event_id: UUID | None = None,
    case_id: UUID | None = None,
    recipient_id: Annotated[str | None, Query(max_length=64)] = None,
    status: DeliveryStatus | None = None,
    channel: Channel | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2_147_483_647)] = 0,
) -> list[DeliveryOut]:
    rows = await handlers.list_deliveries(
        db,
        event_id=event_id,
        case_id=case_id,
        recipient_id=recipient_id,
        status=status.value if status else None,
        channel=channel.value if channel else None,
        limit=limit,
        offset=offset,
    )
    return [DeliveryOut.of(d) for d in rows]


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut, summary="One delivery")
async def get_delivery(
    who: Admin, delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)], db: Pool
) -> DeliveryOut:
    return DeliveryOut.of(await handlers.get_delivery(db, delivery_id))


@router.post(
    "/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    summary="Send a dead delivery again (a fresh schedule of attempts)",
    description="Refused (409 `already_delivered`, naming the delivery) "
    "when the message already went out, or is going out, on another of "
    "the recipient's channels — the fallback that took over, say: a replay "
    "would tell the recipient twice. `force=true` sends it anyway.",
)
async def replay_delivery(
    who: Admin,
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    db: Pool,
    force: Annotated[bool, Query(description="send even if another channel carried it")] = False,
) -> DeliveryOut:
    return DeliveryOut.of(await handlers.replay_delivery(db, who, delivery_id, force=force))
