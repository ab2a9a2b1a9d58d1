"""Case photos (issue 4) against real PostgreSQL: upload, dedupe, limits, who may see them."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid

import asyncpg
import pytest
from PIL import Image

from tests.intake_app import running_intake
from tests.helpers import as_user, bearer

GRID_PATH = "YA/YA01/YA0101/YA0101-01"
COMMUNITY = as_user("taoyuan")  # 桃园社区: YA/YA01/YA0101
WORKER = bearer("grid_worker", GRID_PATH, grids=(GRID_PATH,), subject="gw-li")
OTHER_WORKER = bearer("grid_worker", "YA/YA01/YA0101/YA0101-02",
                      grids=("YA/YA01/YA0101/YA0101-02",), subject="gw-zhang")
REPORT = {"grid_code": "YA0101-01", "category": "E0101", "description": "楼道堆放杂物",
          "priority": "normal"}


def picture(fmt: str = "JPEG", size: tuple[int, int] = (64, 48),
            color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


JPEG = picture("JPEG", (64, 48))
PNG = picture("PNG", (30, 20), (20, 120, 220))


def upload(data: bytes, name: str = "photo.jpg", content_type: str | None = "image/jpeg"):
    part = (name, data, content_type) if content_type is not None else (name, data)
    return {"files": {"file": part}}


@pytest.fixture(scope="module")
async def photos_app(pg_server, kafka_server):
    async with running_intake(pg_server, kafka_server, report_rate_limit_per_minute=1000) as (client, dsn, _settings):
        yield client, dsn


@pytest.fixture
async def intake(photos_app):
    """One app for the module; each test starts from empty case and photo tables."""
    _, dsn = photos_app
    conn = await asyncpg.connect(dsn)
    await conn.execute("TRUNCATE cases, idempotency_keys, photos, outbox, inbox CASCADE")
    await conn.close()
    return photos_app


async def fetchval(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def new_case(client) -> str:
    resp = await client.post("/cases", json=REPORT, headers=COMMUNITY)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


async def set_status(dsn: str, case_id: str, status: str) -> None:
    """Move the case as the lifecycle would (the flows that do it are tested elsewhere)."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("UPDATE cases SET status = $2 WHERE id = $1", uuid.UUID(case_id), status)
    await conn.close()


async def photo_rows(dsn: str) -> int:
    return await fetchval(dsn, "SELECT count(*) FROM photos")


# --- upload -------------------------------------------------------------------------------


async def test_upload_jpeg_and_png_keeps_checksum_type_and_size(intake):
    client, dsn = intake
    case_id = await new_case(client)
    jpeg = await client.post(f"/cases/{case_id}/photos", params={"kind": "before"},
                             headers=WORKER, **upload(JPEG))
    assert jpeg.status_code == 201, jpeg.text
    body = jpeg.json()
    assert body["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert (body["content_type"], body["width"], body["height"]) == ("image/jpeg", 64, 48)
    assert body["size_bytes"] == len(JPEG) and body["kind"] == "before"
    assert body["case_id"] == case_id and body["uploaded_by"] == "gw-li"
    assert body["url"] == f"/photos/{body['id']}" == jpeg.headers["Location"]

    png = await client.post(f"/cases/{case_id}/photos", params={"kind": "before"},
                            headers=COMMUNITY, **upload(PNG, "p.png", "image/png"))
    assert png.status_code == 201, png.text
    assert (png.json()["content_type"], png.json()["width"], png.json()["height"]) \
        == ("image/png", 30, 20)
    assert png.json()["sha256"] == hashlib.sha256(PNG).hexdigest()
    stored = await fetchval(dsn, "SELECT data FROM photos WHERE id = $1",
                            uuid.UUID(png.json()["id"]))
    assert stored == PNG


async def test_a_client_that_declares_no_type_is_judged_by_the_bytes(intake):
    client, _ = intake
    case_id = await new_case(client)
    resp = await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER,
                             **upload(PNG, "blob", "application/octet-stream"))
    assert resp.status_code == 201 and resp.json()["content_type"] == "image/png"


async def test_the_same_picture_twice_is_one_photo(intake):
    client, dsn = intake
    case_id = await new_case(client)
    url = f"/cases/{case_id}/photos?kind=before"
    first = await client.post(url, headers=WORKER, **upload(JPEG))
    again = await client.post(url, headers=WORKER, **upload(JPEG))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert await photo_rows(dsn) == 1
    # ... even after the case has moved on (a retry answers as the first attempt did)
    await set_status(dsn, case_id, "closed")
    late = await client.post(url, headers=WORKER, **upload(JPEG))
    assert late.status_code == 200 and late.json()["id"] == first.json()["id"]
    # the same bytes as an after-photo are another photo
    after = await client.post(f"/cases/{case_id}/photos?kind=after", headers=WORKER,
                              **upload(JPEG))
    assert after.status_code == 201 and after.json()["id"] != first.json()["id"]
    assert await photo_rows(dsn) == 2


async def test_concurrent_retries_keep_one_photo(intake):
    client, dsn = intake
    case_id = await new_case(client)
    url = f"/cases/{case_id}/photos?kind=before"
    answers = await asyncio.gather(*(client.post(url, headers=WORKER, **upload(JPEG))
                                     for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await photo_rows(dsn) == 1


async def test_nine_photos_per_kind_even_when_sent_at_once(intake):
    client, dsn = intake
    case_id = await new_case(client)
    url = f"/cases/{case_id}/photos?kind=before"
    pictures = [picture("JPEG", (32, 32), (20 * i, 100, 50)) for i in range(12)]
    assert len({hashlib.sha256(p).hexdigest() for p in pictures}) == 12
    answers = await asyncio.gather(*(client.post(url, headers=WORKER, **upload(p))
                                     for p in pictures))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 9 + [409] * 3, [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409).json()["error"]
    assert refused["code"] == "too_many_photos" and "9" in refused["message"]
    assert await photo_rows(dsn) == 9
    # a retry of one that was kept is still answered
    kept = next(p for p, a in zip(pictures, answers, strict=True) if a.status_code == 201)
    assert (await client.post(url, headers=WORKER, **upload(kept))).status_code == 200
    # the limit is per kind
    await set_status(dsn, case_id, "resolved")
    after = await client.post(f"/cases/{case_id}/photos?kind=after", headers=WORKER,
                              **upload(pictures[0]))
    assert after.status_code == 201


# --- refusals change nothing --------------------------------------------------------------


@pytest.mark.parametrize(("part", "status", "code"), [
    (("notes.jpg", "这不是图片，只是一段文字。\n".encode() * 20, "image/jpeg"), 415, "not_an_image"),
    (("cut.jpg", JPEG[: len(JPEG) // 2], "image/jpeg"), 415, "not_an_image"),
    (("p.jpg", PNG, "image/jpeg"), 415, "not_an_image"),          # a PNG declared as JPEG
    (("a.gif", picture("GIF"), "image/gif"), 415, "unsupported_photo_type"),
    (("empty.jpg", b"", "image/jpeg"), 422, "empty_photo"),
    (("big.jpg", b"\xff\xd8\xff" + b"\x00" * 6_000_000, "image/jpeg"), 413, "photo_too_large"),
], ids=["text-renamed-jpg", "truncated", "declared-type-lies", "gif", "empty", "6MB"])
async def test_bad_uploads_are_refused_and_change_nothing(intake, part, status, code):
    client, dsn = intake
    case_id = await new_case(client)
    resp = await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER,
                             files={"file": part})
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]
    assert await photo_rows(dsn) == 0


async def test_a_body_past_the_service_limit_is_refused_before_parsing(intake):
    client, dsn = intake
    case_id = await new_case(client)
    resp = await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER,
                             **upload(b"\xff\xd8\xff" + b"\x00" * (7 * 1024 * 1024)))
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    assert await photo_rows(dsn) == 0


async def test_refusal_messages_are_chinese_first(intake):
    client, _ = intake
    case_id = await new_case(client)
    text = upload(b"hello, not a picture" * 10)
    zh = await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER, **text)
    en = await client.post(f"/cases/{case_id}/photos?kind=before",
                           headers={**WORKER, "Accept-Language": "en"}, **text)
    assert zh.json()["error"]["message"].startswith("文件不是有效的图片")
    assert en.json()["error"]["message"].startswith("the file is not a valid image")


@pytest.mark.parametrize(("query", "kwargs"), [
    ("kind=during", upload(JPEG)), ("", upload(JPEG)), ("kind=before", {"data": {"x": "1"}}),
], ids=["unknown-kind", "no-kind", "no-file"])
async def test_malformed_requests_are_422(intake, query, kwargs):
    client, dsn = intake
    case_id = await new_case(client)
    resp = await client.post(f"/cases/{case_id}/photos?{query}", headers=WORKER, **kwargs)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"
    assert await photo_rows(dsn) == 0


async def test_after_photos_wait_for_the_fix_and_before_photos_stop_at_closure(intake):
    client, dsn = intake
    case_id = await new_case(client)
    early = await client.post(f"/cases/{case_id}/photos?kind=after", headers=WORKER,
                              **upload(JPEG))
    assert early.status_code == 409 and early.json()["error"]["code"] == "invalid_state"
    assert "已上报" in early.json()["error"]["message"]
    await set_status(dsn, case_id, "resolved")
    ok = await client.post(f"/cases/{case_id}/photos?kind=after", headers=WORKER, **upload(JPEG))
    assert ok.status_code == 201
    await set_status(dsn, case_id, "closed")
    late_before = await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER,
                                    **upload(PNG, "p.png", "image/png"))
    assert late_before.status_code == 409
    on_the_spot = await client.post(f"/cases/{case_id}/photos?kind=after", headers=WORKER,
                                    **upload(PNG, "p.png", "image/png"))
    assert on_the_spot.status_code == 201
    assert await photo_rows(dsn) == 2


async def test_who_may_upload(intake):
    client, dsn = intake
    case_id = await new_case(client)
    url = f"/cases/{case_id}/photos?kind=before"
    outside = await client.post(url, headers=OTHER_WORKER, **upload(JPEG))
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
    assert (await client.post(url, **upload(JPEG))).status_code == 401
    for role in ("supervisor", "department", "admin"):
        denied = await client.post(url, headers=bearer(role, "YA", department_id="cg"),
                                   **upload(JPEG))
        assert denied.status_code == 403, role
        assert denied.json()["error"]["code"] == "role_not_allowed"
    assert (await client.post(url, headers=bearer("street", "YA/YA02"),
                              **upload(JPEG))).status_code == 403
    missing = await client.post(f"/cases/{uuid.uuid4()}/photos?kind=before", headers=WORKER,
                                **upload(JPEG))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "case_not_found"
    assert await photo_rows(dsn) == 0
    for who in (bearer("street", "YA/YA01"), bearer("district", "YA")):
        assert (await client.post(url, headers=who, **upload(JPEG))).status_code in (200, 201)
    assert await photo_rows(dsn) == 1


# --- reading back -------------------------------------------------------------------------


async def test_list_and_read_back_the_bytes(intake):
    client, dsn = intake
    case_id = await new_case(client)
    before = (await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER,
                                **upload(JPEG))).json()
    await set_status(dsn, case_id, "resolved")
    after = (await client.post(f"/cases/{case_id}/photos?kind=after", headers=COMMUNITY,
                               **upload(PNG, "p.png", "image/png"))).json()

    listed = await client.get(f"/cases/{case_id}/photos", headers=WORKER)
    assert listed.status_code == 200
    assert listed.json() == [before, after]  # before-photos first
    only_after = await client.get(f"/cases/{case_id}/photos?kind=after", headers=WORKER)
    assert [p["id"] for p in only_after.json()] == [after["id"]]

    for meta, data in ((before, JPEG), (after, PNG)):
        got = await client.get(meta["url"], headers=WORKER)
        assert got.status_code == 200
        assert got.content == data
        assert hashlib.sha256(got.content).hexdigest() == meta["sha256"]
        assert got.headers["content-type"] == meta["content_type"]
        assert got.headers["etag"] == f'"{meta["sha256"]}"'
        assert got.headers["cache-control"].startswith("private")
        assert got.headers["x-content-type-options"] == "nosniff"


async def test_etag_revalidation(intake):
    client, _ = intake
    case_id = await new_case(client)
    photo = (await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER,
                               **upload(JPEG))).json()
    first = await client.get(photo["url"], headers=WORKER)
    etag = first.headers["etag"]
    for header in (etag, f"W/{etag}", f'"stale", {etag}', "*"):
        same = await client.get(photo["url"], headers={**WORKER, "If-None-Match": header})
        assert same.status_code == 304, header
        assert same.content == b"" and same.headers["etag"] == etag
        assert same.headers["cache-control"].startswith("private")
    changed = await client.get(photo["url"], headers={**WORKER, "If-None-Match": '"stale"'})
    assert changed.status_code == 200 and changed.content == JPEG
    # revalidation checks permission first: a cached tag is no way in
    outsider = await client.get(photo["url"], headers={**OTHER_WORKER, "If-None-Match": etag})
    assert outsider.status_code == 403


async def test_who_may_read(intake):
    client, _ = intake
    case_id = await new_case(client)
    photo = (await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER,
                               **upload(JPEG))).json()
    inside = bearer("supervisor", "YA/YA01")
    for who in (inside, COMMUNITY, bearer("district", "YA")):
        assert (await client.get(f"/cases/{case_id}/photos", headers=who)).status_code == 200
        assert (await client.get(photo["url"], headers=who)).status_code == 200
    for who in (bearer("supervisor", "YA/YA03"), OTHER_WORKER, bearer("community", "YA/YA02/YA0201")):
        listed = await client.get(f"/cases/{case_id}/photos", headers=who)
        assert listed.status_code == 403 and listed.json()["error"]["code"] == "out_of_scope"
        got = await client.get(photo["url"], headers=who)
        assert got.status_code == 403 and "image" not in got.headers["content-type"]
    dept = bearer("department", department_id="cg")
    assert (await client.get(photo["url"], headers=dept)).status_code == 403
    assert (await client.get(photo["url"])).status_code == 401
    missing = await client.get(f"/photos/{uuid.uuid4()}", headers=WORKER)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "photo_not_found"
    assert (await client.get(f"/cases/{uuid.uuid4()}/photos", headers=WORKER)).status_code == 404
