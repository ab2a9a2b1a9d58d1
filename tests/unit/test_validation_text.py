"""A refused field reads in Chinese for a Chinese user (the console showed pydantic's English
after "请求内容无效 —"), in English on request, and a validator's own words stay."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import httpx
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, field_validator

from shared.http import install_error_handlers


class Body(BaseModel):
    description: str = Field(max_length=5)
    grid: str

    @field_validator("grid")
    @classmethod
    def known(cls, v: str) -> str:
        if v != "YA0101-03":
            raise ValueError("网格 YA0101-03 以外不可上报")
        return v


def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/cases/{case_id}")
    async def one(
        case_id: UUID,
        status: Literal["reported", "closed"] | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict:
        return {}

    @app.post("/cases")
    async def report(body: Body) -> dict:
        return {}

    return TestClient(app)


def message(resp: httpx.Response) -> str:
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "validation_error"
    return resp.json()["error"]["message"]


def test_query_and_path_problems_read_in_chinese() -> None:
    said = message(client().get("/cases/not-an-id", params={"status": "x", "limit": 500}))
    assert said.startswith("请求内容无效 — ")
    assert "path.case_id: 应为 UUID 编号" in said
    assert "query.status: 应为以下之一：'reported'、'closed'" in said
    assert "query.limit: 应不大于 200" in said
    assert "Input should" not in said


def test_body_problems_read_in_chinese_and_a_validators_words_stay() -> None:
    c = client()
    said = message(c.post("/cases", json={"description": "太长的一段描述文字"}))
    assert "description: 最多 5 个字符" in said and "grid: 必填" in said
    said = message(c.post("/cases", json={"description": "短", "grid": "YA0101-04"}))
    assert "grid: 网格 YA0101-03 以外不可上报" in said and "Value error" not in said


def test_english_on_request_keeps_pydantics_words() -> None:
    resp = client().get("/cases/not-an-id", headers={"Accept-Language": "en"})
    said = message(resp)
    assert said.startswith("Invalid request — path.case_id: Input should be a valid UUID")
    # the details keep pydantic's words for programs, whatever the language
    assert resp.json()["error"]["details"][0]["problem"].startswith("Input should be a valid UUID")
