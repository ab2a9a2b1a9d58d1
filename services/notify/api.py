"""Notify's HTTP routes: recipients and their inbox; the delivery log and replays.

Who may do what (each route states its rule in its ``who`` parameter):

- recipients (reference data) and the delivery log with its replays (operations): admin;
- an inbox, and marking its messages read: a department desk's inbox by that department's
  staff; a supervisor desk's inbox by supervisor, community, street or district users whose
  subtree covers the desk's area (the scope is checked in the handler, before any write).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from services.notify import handlers
from services.notify.domain import Channel, DeliveryStatus, Recipient, RecipientKind
from services.notify.repository import Delivery, InboxMessage
from shared.auth import AREA_ROLES, Principal, Role, allow
from shared.service import pool

Pool = Annotated[asyncpg.Pool, Depends(pool)]

# The rules (one per route). Recipients are reference data and the delivery log is
# operations: admin. An inbox is read by department staff or by those overseeing an area;
# which inbox is theirs is checked against the recipient in the handler.
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
InboxReader = Annotated[Principal, Depends(allow(Role.DEPARTMENT, Role.SUPERVISOR, *AREA_ROLES))]
RecipientId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                                  description="接收方编号 recipient id")]

recipients_router = APIRouter(tags=["recipients"])
deliveries_router = APIRouter(tags=["deliveries"])


class RecipientFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="名称，如 榆安区城市管理局值班室")
    kind: RecipientKind = Field(description="department 部门 / supervisor 督办")
    department_id: str | None = Field(default=None, min_length=1, max_length=64,
                                      description="部门编号 (kind=department)")
    area_path: str | None = Field(default=None, min_length=1, max_length=200,
                                  description="督办辖区路径，如 YA/YA01 (kind=supervisor)")
    webhook_url: str | None = Field(default=None, max_length=2000,
                                    description="http(s) 地址；收到签名的 POST")
    webhook_secret: str | None = Field(
        default=None, max_length=200,
        description="Standard Webhooks secret (whsec_…); without it webhooks are unsigned",
    )

    def to_domain(self, recipient_id: str) -> Recipient:
        return Recipient(id=recipient_id, **self.model_dump())


class RecipientIn(RecipientFields):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="接收方编号")


class RecipientOut(BaseModel):
    id: str
    name: str
    kind: RecipientKind
    department_id: str | None
    area_path: str | None
    webhook_url: str | None
    webhook_signed: bool = Field(description="webhooks are signed (the secret is never shown)")

    @classmethod
    def of(cls, r: Recipient) -> RecipientOut:
        return cls(id=r.id, name=r.name, kind=r.kind, department_id=r.department_id,
                   area_path=r.area_path, webhook_url=r.webhook_url,
                   webhook_signed=bool(r.webhook_secret))


class MessageOut(BaseModel):
    id: int
    recipient_id: str
    event_id: UUID
    case_id: UUID
    type: str
    title: str
    body: str
    title_en: str
    body_en: str
    link: str
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, m: InboxMessage) -> MessageOut:
        return cls(**m.__dict__)


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
    next_attempt_at: datetime
    replays: int
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(**d.__dict__)


@recipients_router.post("/recipients", status_code=201, response_model=RecipientOut,
                        summary="Register a recipient (部门值班室 or 督办)")
async def create_recipient(who: Admin, body: RecipientIn, db: Pool) -> RecipientOut:
    recipient = Recipient(**body.model_dump())
    return RecipientOut.of(await handlers.create_recipient(db, who, recipient))


@recipients_router.put("/recipients/{recipient_id}", response_model=RecipientOut,
                       summary="Replace a recipient's settings (omitted fields are cleared)")
async def update_recipient(
    who: Admin, recipient_id: RecipientId, body: RecipientFields, db: Pool
) -> RecipientOut:
    recipient = body.to_domain(recipient_id)
    return RecipientOut.of(await handlers.update_recipient(db, who, recipient))


@recipients_router.get("/recipients", response_model=list[RecipientOut], summary="List recipients")
async def list_recipients(
    who: Admin, db: Pool, kind: RecipientKind | None = None
) -> list[RecipientOut]:
    return [RecipientOut.of(r) for r in await handlers.list_recipients(db, kind)]


@recipients_router.get("/recipients/{recipient_id}/inbox", response_model=list[MessageOut],
                       summary="A recipient's in-app messages, newest first")
async def inbox(
    who: InboxReader, recipient_id: RecipientId, db: Pool,
    unread: Annotated[bool | None, Query(description="true: unread only; false: read only")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[MessageOut]:
    messages = await handlers.inbox(db, who, recipient_id, unread=unread, limit=limit,
                                    offset=offset)
    return [MessageOut.of(m) for m in messages]


@recipients_router.post("/recipients/{recipient_id}/inbox/{message_id}/read",
                        response_model=MessageOut, summary="Mark a message read")
async def mark_read(
    who: InboxReader, recipient_id: RecipientId, message_id: Annotated[int, Path(ge=1)], db: Pool
) -> MessageOut:
    return MessageOut.of(await handlers.mark_read(db, who, recipient_id, message_id))


@deliveries_router.get("/deliveries", response_model=list[DeliveryOut],
                       summary="The delivery log: status, attempts, last error")
async def list_deliveries(
    who: Admin, db: Pool,
    event_id: UUID | None = None,
    case_id: UUID | None = None,
    recipient_id: Annotated[str | None, Query(max_length=64)] = None,
    status: DeliveryStatus | None = None,
    channel: Channel | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DeliveryOut]:
    rows = await handlers.list_deliveries(
        db, event_id=event_id, case_id=case_id, recipient_id=recipient_id,
        status=status.value if status else None, channel=channel.value if channel else None,
        limit=limit, offset=offset,
    )
    return [DeliveryOut.of(d) for d in rows]


@deliveries_router.get("/deliveries/{delivery_id}", response_model=DeliveryOut,
                       summary="One delivery")
async def get_delivery(
    who: Admin, delivery_id: Annotated[int, Path(ge=1)], db: Pool
) -> DeliveryOut:
    return DeliveryOut.of(await handlers.get_delivery(db, delivery_id))


@deliveries_router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryOut,
                        summary="Send a dead delivery again (a fresh schedule of attempts)")
async def replay_delivery(
    who: Admin, delivery_id: Annotated[int, Path(ge=1)], db: Pool
) -> DeliveryOut:
    return DeliveryOut.of(await handlers.replay_delivery(db, who, delivery_id))
