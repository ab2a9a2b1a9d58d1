"""Set-up through the API for the console's browser tests: tokens of the demo users, a
generated picture, a case reported by the grid worker and whistled by the community."""

from __future__ import annotations

import io
import uuid

import httpx
from PIL import Image


def as_(stack, subject: str) -> dict[str, str]:
    """Authorization header of one of the demo users, signed with the stack's secret."""
    return {"Authorization": f"Bearer {stack.mint_demo_token(subject)}"}


def png(color: tuple[int, int, int], size: tuple[int, int] = (160, 120)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


async def report_and_whistle(http: httpx.AsyncClient, stack, description: str) -> dict:
    """网格发现 + 社区吹哨, as wangfang and taoyuan would (no department named: E0101 in
    桃园社区 goes to 城管 by the routing rule)."""
    body = {
        "grid_code": "YA0101-03",
        "category": "E0101",
        "priority": "normal",
        "description": description,
        "location": {"address": "桃园小区5号楼2单元"},
    }
    created = await http.post(
        f"{stack.url('intake')}/cases",
        json=body,
        headers={**as_(stack, "wangfang"), "Idempotency-Key": f"console-{uuid.uuid4()}"},
    )
    assert created.status_code == 201, created.text
    case = created.json()
    whistled = await http.post(
        f"{stack.url('intake')}/cases/{case['id']}/whistle",
        json={"note": "请尽快清运"},
        headers=as_(stack, "taoyuan"),
    )
    assert whistled.status_code == 200, whistled.text
    return case
