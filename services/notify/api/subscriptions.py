"""Subscriptions: who asked to hear which events besides the defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.notify import handlers
from shared.dto import fill
from shared.service import Pool
from services.notify.api.common import Admin, Box
from services.notify.domain import (
    NoticeKind,
    Subscription,
)

router = APIRouter(tags=["subscriptions"])


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipient_id: str = Field(max_length=64, description="接收方编号")
    event_types: list[NoticeKind] = Field(
        min_length=1, max_length=10, description="case.dispatched / case.overdue / …"
    )
    area_path: str | None = Field(
        default=None, max_length=200, description="辖区子树，如 YA/YA01（含下级）；空 = 全部"
    )
    department_id: str | None = Field(default=None, min_length=1, max_length=64)
    categories: list[str] = Field(
        default_factory=list, max_length=50, description="分类编码；大类 C01 含其小类 C0101"
    )
    priorities: list[Literal["urgent", "normal", "minor"]] = Field(default_factory=list)

    def to_domain(self, who: str) -> Subscription:
        return Subscription(
            recipient_id=self.recipient_id,
            event_types=tuple(k.value for k in self.event_types),
            area_path=self.area_path,
            department_id=self.department_id,
            categories=tuple(self.categories),
            priorities=tuple(self.priorities),
            created_by=who,
        )


class SubscriptionOut(BaseModel):
    id: int
    recipient_id: str
    event_types: list[str]
    area_path: str | None
    department_id: str | None
    categories: list[str]
    priorities: list[str]

    @classmethod
    def of(cls, s: Subscription) -> SubscriptionOut:
        assert s.id is not None  # a stored subscription
        return fill(cls, s)


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionOut,
    summary="Subscribe a recipient to events (type × area × department × category × priority)",
)
async def subscribe(who: Admin, body: SubscriptionIn, db: Pool, box: Box) -> SubscriptionOut:
    return SubscriptionOut.of(await handlers.subscribe(db, who, body.to_domain(who.subject), box))


@router.get(
    "/subscriptions",
    response_model=list[SubscriptionOut],
    summary="Subscriptions (the defaults need none)",
)
async def list_subscriptions(
    who: Admin,
    db: Pool,
    recipient_id: Annotated[str | None, Query(max_length=64)] = None,
    event_type: NoticeKind | None = None,
) -> list[SubscriptionOut]:
    rows = await handlers.list_subscriptions(
        db, recipient_id, event_type.value if event_type else None
    )
    return [SubscriptionOut.of(s) for s in rows]


@router.delete("/subscriptions/{subscription_id}", status_code=204, summary="Remove a subscription")
async def unsubscribe(
    who: Admin, subscription_id: Annotated[int, Path(ge=1, le=2**63 - 1)], db: Pool
) -> Response:
    await handlers.unsubscribe(db, who, subscription_id)
    return Response(status_code=204)
