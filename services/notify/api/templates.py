"""Message templates: what each kind of notice says, per locale; operators replace and reset.

``${name}`` placeholders (``$$`` is a dollar sign); each kind's template may use the fields
listed with it. A template that does not check out is refused with 422, naming the bad
placeholder, and nothing changes; a change is in force for the next message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from services.notify import handlers
from services.notify.api.common import Admin
from services.notify.domain import NoticeKind
from shared.service import Pool

router = APIRouter(tags=["templates"])

Locale = Annotated[Literal["zh-CN", "en"], Path(description="语言 locale: zh-CN 或 en")]
Kind = Annotated[NoticeKind, Path(description="消息类型 notice kind: case.dispatched, …")]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=10_000, description="标题，如 【派单】${urgent}案件${case_no}…")
    body: str = Field(max_length=10_000, description="正文，占位符写作 ${名称}，$$ 表示 $")


class TemplateOut(BaseModel):
    kind: NoticeKind
    locale: str
    title: str
    body: str
    default: bool = Field(description="true: the shipped template; false: an operator's")
    fields: list[str] = Field(description="the placeholders this kind's template may use")
    updated_by: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, v: handlers.TemplateView) -> TemplateOut:
        t = v.template
        return cls(
            kind=t.kind,
            locale=t.locale,
            title=t.title,
            body=t.body,
            default=v.default,
            fields=list(v.fields),
            updated_by=v.updated_by,
            updated_at=v.updated_at,
        )


@router.get(
    "/templates",
    response_model=list[TemplateOut],
    summary="Message templates in force, per notice kind and locale (zh-CN first)",
)
async def list_templates(who: Admin, db: Pool, kind: NoticeKind | None = None) -> list[TemplateOut]:
    return [TemplateOut.of(v) for v in await handlers.list_templates(db, kind)]


@router.put(
    "/templates/{kind}/{locale}",
    response_model=TemplateOut,
    summary="Replace a template (checked: 422 naming a bad placeholder, nothing changed)",
)
async def replace_template(
    who: Admin, kind: Kind, locale: Locale, body: TemplateIn, db: Pool
) -> TemplateOut:
    view = await handlers.replace_template(db, who, kind, locale, body.title, body.body)
    return TemplateOut.of(view)


@router.delete(
    "/templates/{kind}/{locale}",
    response_model=TemplateOut,
    summary="Reset a template to the shipped one",
)
async def reset_template(who: Admin, kind: Kind, locale: Locale, db: Pool) -> TemplateOut:
    return TemplateOut.of(await handlers.reset_template(db, who, kind, locale))
