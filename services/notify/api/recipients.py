"""Recipients, their preferences and their in-app inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import anyio
from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from services.notify import domain, handlers
from services.notify.api.common import (
    RECIPIENT_ID_PATTERN,
    Admin,
    AllowPrivate,
    Box,
    InboxReader,
    RecipientId,
)
from services.notify.domain import (
    Channel,
    ChannelPref,
    NoticeKind,
    Preferences,
    Recipient,
    RecipientKind,
)
from services.notify.domain.preferences import parse_hhmm
from services.notify.repository import InboxMessage
from services.notify.stream import InboxStreams
from shared.dto import fill
from shared.service import Pool
from shared.errors import Invalid
from shared.sse import until_expiry

router = APIRouter(tags=["recipients"])
STREAM_SHUTDOWN_GRACE_SECONDS = 3.0
MAX_SEQ = 2**63 - 1  # inbox_messages.seq is a bigint


class RecipientFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="名称，如 榆安区城市管理局值班室")
    kind: RecipientKind = Field(
        description="department 部门 / supervisor 督办 / community 社区 / grid_worker 网格员"
    )
    department_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="部门编号 (kind=department)"
    )
    area_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="辖区路径，如 YA/YA01 (supervisor, community, grid_worker)",
    )
    webhook_url: str | None = Field(
        default=None, max_length=2000, description="http(s) 地址；收到签名的 POST"
    )
    webhook_secret: str | None = Field(
        default=None,
        max_length=200,
        description="Standard Webhooks secret (whsec_…); without it webhooks are unsigned",
    )

    def to_domain(self, recipient_id: str) -> Recipient:
        return Recipient(id=recipient_id, **self.model_dump())


class RecipientIn(RecipientFields):
    id: str = Field(pattern=RECIPIENT_ID_PATTERN, description="接收方编号")


class RecipientOut(BaseModel):
    id: str
    name: str
    kind: RecipientKind
    department_id: str | None
    area_path: str | None
    webhook_url: str | None
    webhook_signed: bool = Field(description="webhooks are signed (the secret is never shown)")
    channels: list[Channel] = Field(description="channels tried in order after the inbox")
    locale: str

    @classmethod
    def of(cls, r: Recipient) -> RecipientOut:
        return fill(
            cls,
            r,
            webhook_signed=bool(r.webhook_secret),
            channels=[c.kind for c in r.channel_list()],
            locale=r.preferences.locale,
        )


HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])]


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: HHMM = Field(description="免打扰开始（北京时间）")
    end: HHMM = Field(description="免打扰结束（北京时间）；可跨午夜，如 22:00–07:00")


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Channel = Field(description="webhook / wecom / dingtalk / feishu / email / sms")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="该渠道的设置；密钥省略或原样回传掩码时保留已存的值 (a secret left out, or sent "
        "back masked, keeps its stored value)",
    )


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: list[ChannelIn] = Field(
        default_factory=list,
        max_length=6,
        description="渠道顺序：先用第一个，持续失败再用下一个；站内信始终开启",
    )
    locale: Literal["zh-CN", "en"] = "zh-CN"
    quiet_hours: QuietHours | None = Field(default=None, description="紧急案件不受免打扰限制")
    muted_events: list[NoticeKind] = Field(
        default_factory=list,
        max_length=20,
        description="不再接收的默认消息（如 case.deadline_warning）；需立即处理的（部门的派单、督办，"
        "督办/社区的逐级上报，督办待审批的申请）不能关闭；明确订阅的仍会收到 (default "
        "events opted out of; not those asking for action now; subscriptions still "
        "deliver)",
    )

    def to_domain(self) -> Preferences:
        quiet = self.quiet_hours
        return Preferences(
            channels=tuple(ChannelPref(c.kind, c.settings) for c in self.channels),
            locale=self.locale,
            quiet_start=parse_hhmm("quiet_hours.start", quiet.start) if quiet else None,
            quiet_end=parse_hhmm("quiet_hours.end", quiet.end) if quiet else None,
            muted=tuple(k.value for k in self.muted_events),
        )


class ChannelOut(BaseModel):
    kind: Channel
    settings: dict[str, Any] = Field(description="secrets masked: ****1234")


class PreferencesOut(BaseModel):
    recipient_id: str
    channels: list[ChannelOut]
    locale: str
    quiet_hours: QuietHours | None
    muted_events: list[str]

    @classmethod
    def of(cls, r: Recipient) -> PreferencesOut:
        p = r.preferences
        quiet = (
            QuietHours(start=f"{p.quiet_start:%H:%M}", end=f"{p.quiet_end:%H:%M}")
            if p.quiet_start and p.quiet_end
            else None
        )
        return cls(
            recipient_id=r.id,
            locale=p.locale,
            quiet_hours=quiet,
            muted_events=list(p.muted),
            channels=[
                ChannelOut(kind=c.kind, settings=domain.masked_settings(c.kind.value, c.settings))
                for c in p.channels
            ],
        )


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
    seq: int = Field(description="its number in the recipient's live stream (the SSE id)")

    @classmethod
    def of(cls, m: InboxMessage) -> MessageOut:
        return fill(cls, m)


@router.post(
    "/recipients",
    status_code=201,
    response_model=RecipientOut,
    summary="Register a recipient (部门值班室 or 督办)",
)
async def create_recipient(
    who: Admin, body: RecipientIn, db: Pool, box: Box, allow_private: AllowPrivate
) -> RecipientOut:
    recipient = Recipient(**body.model_dump())
    return RecipientOut.of(
        await handlers.create_recipient(db, who, recipient, box, allow_private=allow_private)
    )


@router.put(
    "/recipients/{recipient_id}",
    response_model=RecipientOut,
    summary="Replace a recipient's settings (omitted fields are cleared)",
)
async def update_recipient(
    who: Admin,
    recipient_id: RecipientId,
    body: RecipientFields,
    db: Pool,
    box: Box,
    allow_private: AllowPrivate,
) -> RecipientOut:
    recipient = body.to_domain(recipient_id)
    return RecipientOut.of(
        await handlers.update_recipient(db, who, recipient, box, allow_private=allow_private)
    )


@router.get("/recipients", response_model=list[RecipientOut], summary="List recipients")
async def list_recipients(
    who: Admin, db: Pool, box: Box, kind: RecipientKind | None = None
) -> list[RecipientOut]:
    return [RecipientOut.of(r) for r in await handlers.list_recipients(db, kind, box)]


@router.put(
    "/recipients/{recipient_id}/preferences",
    response_model=PreferencesOut,
    summary="Set a recipient's channels in order, language and quiet hours",
)
async def set_preferences(
    who: Admin,
    recipient_id: RecipientId,
    body: PreferencesIn,
    db: Pool,
    box: Box,
    allow_private: AllowPrivate,
) -> PreferencesOut:
    recipient = await handlers.set_preferences(
        db, who, recipient_id, body.to_domain(), box, allow_private=allow_private
    )
    return PreferencesOut.of(recipient)


@router.get(
    "/recipients/{recipient_id}/preferences",
    response_model=PreferencesOut,
    summary="A recipient's preferences (secrets masked)",
)
async def get_preferences(
    who: Admin, recipient_id: RecipientId, db: Pool, box: Box
) -> PreferencesOut:
    return PreferencesOut.of(await handlers.get_recipient(db, recipient_id, box))


@router.get(
    "/recipients/{recipient_id}/inbox",
    response_model=list[MessageOut],
    summary="A recipient's in-app messages, newest first",
)
async def inbox(
    who: InboxReader,
    recipient_id: RecipientId,
    db: Pool,
    box: Box,
    unread: Annotated[bool | None, Query(description="true: unread only; false: read only")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2_147_483_647)] = 0,
) -> list[MessageOut]:
    messages = await handlers.inbox(
        db, who, recipient_id, box, unread=unread, limit=limit, offset=offset
    )
    return [MessageOut.of(m) for m in messages]


@router.post(
    "/recipients/{recipient_id}/inbox/{message_id}/read",
    response_model=MessageOut,
    summary="Mark a message read",
)
async def mark_read(
    who: InboxReader,
    recipient_id: RecipientId,
    message_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    db: Pool,
    box: Box,
) -> MessageOut:
    return MessageOut.of(await handlers.mark_read(db, who, recipient_id, message_id, box))


@router.get(
    "/recipients/{recipient_id}/stream",
    response_class=EventSourceResponse,
    summary="A recipient's in-app messages as they arrive (Server-Sent Events)",
    description="Read by whoever may read the inbox. `event: ready` first (its `id:` the "
    "position the stream starts after), then `event: message` for each new message, its "
    "`id:` the message's `seq` and its data the message as the inbox shows it. A browser "
    "reconnecting sends the last id back as `Last-Event-ID` and misses nothing "
    "(`last_event_id` does the same as a query parameter: read the inbox, then stream after "
    "its highest `seq`). Without either the stream starts after the latest message. "
    "Heartbeat comments keep it open; the stream ends when the service shuts down or the "
    "token that opened it expires (the browser reconnects, with a fresh token). `follow=false` sends what is there and ends.",
)
async def stream(
    request: Request,
    who: InboxReader,
    recipient_id: RecipientId,
    db: Pool,
    box: Box,
    last_event_id: Annotated[str | None, Query(max_length=20)] = None,
    follow: bool = True,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=20)
    ] = None,
) -> EventSourceResponse:
    after = _position(last_event_id_header or last_event_id)
    start = await handlers.stream_start(db, who, recipient_id, box, after)  # 404/403 first
    streams: InboxStreams = request.app.state.inbox_streams
    settings = request.app.state.runtime.settings
    # the server asked to exit: sse-starlette sets it, the stream ends after what it has
    # sent (a clean end of the response) instead of being cut off
    shutdown = anyio.Event()
    return EventSourceResponse(
        until_expiry(
            streams.follow(db, recipient_id, start, follow=follow, shutdown=shutdown),
            who.expires_at,
        ),
        ping=settings.stream_heartbeat_seconds,
        shutdown_event=shutdown,
        shutdown_grace_period=STREAM_SHUTDOWN_GRACE_SECONDS,
    )


def _position(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    # ASCII digits within a bigint: str.isdigit() also takes '²' (which int() refuses) and a
    # number past 2**63 - 1 fails in the database after the stream has opened
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_SEQ:
        raise Invalid(
            f"Last-Event-ID“{raw}”无效（应为本流发出的消息编号，如 42）",
            f"invalid Last-Event-ID '{raw}' (expected a number this stream sent, e.g. 42)",
            code="invalid_last_event_id",
        )
    return int(raw)
