"""Case photos (issues 4 and 5) against real PostgreSQL: upload, dedupe, limits, who may see
them, departments' after-photos (整改后) and the case.photo_added event in the outbox."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid

import asyncpg
import pytest
from PIL import Image

from shared.contract import CaseDispatched, CaseTransferred, Priority, new_event
from tests.intake_app import running_intake
from tests.helpers import as_user, bearer, eventually, fetchval, publish_event, truncate

GRID_PATH = "YA/YA01/YA0101/YA0101-01"
COMMUNITY = as_user("taoyuan")  # 桃园社区: YA/YA01/YA0101
WORKER = bearer("grid_worker", GRID_PATH, grids=(GRID_PATH,), subject="gw-li")
OTHER_WORKER = bearer(
    "grid_worker",
    "YA/YA01/YA0101/YA0101-02",
    grids=("YA/YA01/YA0101/YA0101-02",),
    subject="gw-zhang",
)
CG = bearer("department", department_id="cg", subject="cg-wang")  # 城管, dispatched the case
XF = bearer("department", department_id="xf", subject="xf-zhao")  # 消防, not dispatched it
REPORT = {
    "grid_code": "YA0101-01",
    "category": "E0101",
    "description": "楼道堆放杂物",
    "priority": "normal",
}


def picture(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
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
    async with running_intake(pg_server, kafka_server, report_rate_limit_per_minute=1000) as (
        client,
        dsn,
        _settings,
    ):
        yield client, dsn


@pytest.fixture
async def intake(photos_app):
    """One app for the module; each test starts from empty case and photo tables."""
    _, dsn = photos_app
    await truncate(dsn, "cases", "idempotency_keys", "photos", "outbox", "inbox")
    return photos_app


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


async def photo_events(dsn: str) -> list[dict]:
    """The case.photo_added envelopes in intake's outbox, oldest first (sent or not)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT key, topic, payload FROM outbox WHERE type = 'case.photo_added' ORDER BY id"
        )
    finally:
        await conn.close()
    return [{**json.loads(r["payload"]), "_key": r["key"], "_topic": r["topic"]} for r in rows]


async def dispatched_to(
    dsn: str, case_id: str, *departments: str, status: str = "dispatched"
) -> None:
    """The case as intake keeps it once dispatch assigned it (on_dispatched, tested below
    through the broker once)."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "UPDATE cases SET status = $2, assigned_departments = $3 WHERE id = $1",
        uuid.UUID(case_id),
        status,
        list(departments),
    )
    await conn.close()


# --- upload -------------------------------------------------------------------------------


async def test_upload_jpeg_and_png_keeps_checksum_type_and_size(intake):
    client, dsn = intake
    case_id = await new_case(client)
    jpeg = await client.post(
        f"/cases/{case_id}/photos", params={"kind": "before"}, headers=WORKER, **upload(JPEG)
    )
    assert jpeg.status_code == 201, jpeg.text
    body = jpeg.json()
    assert body["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert (body["content_type"], body["width"], body["height"]) == ("image/jpeg", 64, 48)
    assert body["size_bytes"] == len(JPEG) and body["kind"] == "before"
    assert body["case_id"] == case_id and body["uploaded_by"] == "gw-li"
    assert body["url"] == f"/photos/{body['id']}" == jpeg.headers["Location"]

    png = await client.post(
        f"/cases/{case_id}/photos",
        params={"kind": "before"},
        headers=COMMUNITY,
        **upload(PNG, "p.png", "image/png"),
    )
    assert png.status_code == 201, png.text
    assert (png.json()["content_type"], png.json()["width"], png.json()["height"]) == (
        "image/png",
        30,
        20,
    )
    assert png.json()["sha256"] == hashlib.sha256(PNG).hexdigest()
    stored = await fetchval(
        dsn, "SELECT data FROM photos WHERE id = $1", uuid.UUID(png.json()["id"])
    )
    assert stored == PNG


async def test_a_photo_is_kept_without_its_gps_but_upright_and_the_case_keeps_its_position(intake):
    client, dsn = intake
    located = {**REPORT, "location": {"lat": 37.7, "lon": 112.7, "address": "桃园小区3号楼"}}
    created = await client.post("/cases", json=located, headers=COMMUNITY)
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 26.5), 3: "E", 4: (116.0, 23.0, 29.0)}  # GPS IFD
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buf, "JPEG", exif=exif.tobytes())
    sent = buf.getvalue()
    with Image.open(io.BytesIO(sent)) as img:
        assert img.getexif().get_ifd(0x8825)  # the upload does carry a position

    resp = await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER, **upload(sent))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["width"], body["height"]) == (48, 64)  # shown upright
    served = await client.get(body["url"], headers=WORKER)
    assert served.status_code == 200
    with Image.open(io.BytesIO(served.content)) as img:
        img.load()
        assert (img.format, img.size) == ("JPEG", (64, 48))
        assert not img.getexif().get_ifd(0x8825)
        assert dict(img.getexif()) == {0x0112: 6}  # the orientation, and nothing else
    assert body["sha256"] == hashlib.sha256(served.content).hexdigest()
    assert body["size_bytes"] == len(served.content)
    stored = await fetchval(dsn, "SELECT data FROM photos WHERE id = $1", uuid.UUID(body["id"]))
    assert stored == served.content
    # the same upload again is the same photo
    again = await client.post(
        f"/cases/{case_id}/photos?kind=before", headers=WORKER, **upload(sent)
    )
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    case = await client.get(f"/cases/{case_id}", headers=COMMUNITY)
    assert case.json()["location"]["lat"] == 37.7 and case.json()["location"]["lon"] == 112.7


async def test_a_client_that_declares_no_type_is_judged_by_the_bytes(intake):
    client, _ = intake
    case_id = await new_case(client)
    resp = await client.post(
        f"/cases/{case_id}/photos?kind=before",
        headers=WORKER,
        **upload(PNG, "blob", "application/octet-stream"),
    )
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
    after = await client.post(f"/cases/{case_id}/photos?kind=after", headers=WORKER, **upload(JPEG))
    assert after.status_code == 201 and after.json()["id"] != first.json()["id"]
    assert await photo_rows(dsn) == 2


async def test_concurrent_retries_keep_one_photo(intake):
    client, dsn = intake
    case_id = await new_case(client)
    url = f"/cases/{case_id}/photos?kind=before"
    answers = await asyncio.gather(
        *(client.post(url, headers=WORKER, **upload(JPEG)) for _ in range(5))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await photo_rows(dsn) == 1


async def test_nine_photos_per_kind_even_when_sent_at_once(intake):
    client, dsn = intake
    case_id = await new_case(client)
    url = f"/cases/{case_id}/photos?kind=before"
    pictures = [picture("JPEG", (32, 32), (20 * i, 100, 50)) for i in range(12)]
    assert len({hashlib.sha256(p).hexdigest() for p in pictures}) == 12
    answers = await asyncio.gather(
        *(client.post(url, headers=WORKER, **upload(p)) for p in pictures)
    )
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
    after = await client.post(
        f"/cases/{case_id}/photos?kind=after", headers=WORKER, **upload(pictures[0])
    )
    assert after.status_code == 201


# --- refusals change nothing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "status", "code"),
    [
        (
            ("notes.jpg", "这不是图片，只是一段文字。\n".encode() * 20, "image/jpeg"),
            415,
            "not_an_image",
        ),
        (("cut.jpg", JPEG[: len(JPEG) // 2], "image/jpeg"), 415, "not_an_image"),
        (("p.jpg", PNG, "image/jpeg"), 415, "not_an_image"),  # a PNG declared as JPEG
        (("a.gif", picture("GIF"), "image/gif"), 415, "unsupported_photo_type"),
        (("empty.jpg", b"", "image/jpeg"), 422, "empty_photo"),
        (("big.jpg", b"\xff\xd8\xff" + b"\x00" * 6_000_000, "image/jpeg"), 413, "photo_too_large"),
    ],
    ids=["text-renamed-jpg", "truncated", "declared-type-lies", "gif", "empty", "6MB"],
)
async def test_bad_uploads_are_refused_and_change_nothing(intake, part, status, code):
    client, dsn = intake
    case_id = await new_case(client)
    resp = await client.post(
        f"/cases/{case_id}/photos?kind=before", headers=WORKER, files={"file": part}
    )
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]
    assert await photo_rows(dsn) == 0


async def test_a_body_past_the_service_limit_is_refused_before_parsing(intake):
    client, dsn = intake
    case_id = await new_case(client)
    resp = await client.post(
        f"/cases/{case_id}/photos?kind=before",
        headers=WORKER,
        **upload(b"\xff\xd8\xff" + b"\x00" * (7 * 1024 * 1024)),
    )
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    assert await photo_rows(dsn) == 0


async def test_refusal_messages_are_chinese_first(intake):
    client, _ = intake
    case_id = await new_case(client)
    text = upload(b"hello, not a picture" * 10)
    zh = await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER, **text)
    en = await client.post(
        f"/cases/{case_id}/photos?kind=before", headers={**WORKER, "Accept-Language": "en"}, **text
    )
    assert zh.json()["error"]["message"].startswith("文件不是有效的图片")
    assert en.json()["error"]["message"].startswith("the file is not a valid image")


@pytest.mark.parametrize(
    ("query", "kwargs"),
    [
        ("kind=during", upload(JPEG)),
        ("", upload(JPEG)),
        ("kind=before", {"data": {"x": "1"}}),
    ],
    ids=["unknown-kind", "no-kind", "no-file"],
)
async def test_malformed_requests_are_422(intake, query, kwargs):
    client, dsn = intake
    case_id = await new_case(client)
    resp = await client.post(f"/cases/{case_id}/photos?{query}", headers=WORKER, **kwargs)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"
    assert await photo_rows(dsn) == 0


async def test_after_photos_wait_for_the_fix_and_before_photos_stop_at_closure(intake):
    client, dsn = intake
    case_id = await new_case(client)
    early = await client.post(f"/cases/{case_id}/photos?kind=after", headers=WORKER, **upload(JPEG))
    assert early.status_code == 409 and early.json()["error"]["code"] == "invalid_state"
    assert "已上报" in early.json()["error"]["message"]
    await set_status(dsn, case_id, "resolved")
    ok = await client.post(f"/cases/{case_id}/photos?kind=after", headers=WORKER, **upload(JPEG))
    assert ok.status_code == 201
    await set_status(dsn, case_id, "closed")
    late_before = await client.post(
        f"/cases/{case_id}/photos?kind=before", headers=WORKER, **upload(PNG, "p.png", "image/png")
    )
    assert late_before.status_code == 409
    on_the_spot = await client.post(
        f"/cases/{case_id}/photos?kind=after", headers=WORKER, **upload(PNG, "p.png", "image/png")
    )
    assert on_the_spot.status_code == 201
    assert await photo_rows(dsn) == 2


async def test_who_may_upload(intake):
    client, dsn = intake
    case_id = await new_case(client)
    url = f"/cases/{case_id}/photos?kind=before"
    outside = await client.post(url, headers=OTHER_WORKER, **upload(JPEG))
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
    assert (await client.post(url, **upload(JPEG))).status_code == 401
    for role in ("supervisor", "admin"):
        denied = await client.post(url, headers=bearer(role, "YA"), **upload(JPEG))
        assert denied.status_code == 403, role
        assert denied.json()["error"]["code"] == "role_not_allowed"
    denied = await client.post(url, headers=CG, **upload(JPEG))  # not assigned, and "before"
    assert denied.status_code == 403
    assert (
        await client.post(url, headers=bearer("street", "YA/YA02"), **upload(JPEG))
    ).status_code == 403
    missing = await client.post(
        f"/cases/{uuid.uuid4()}/photos?kind=before", headers=WORKER, **upload(JPEG)
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "case_not_found"
    assert await photo_rows(dsn) == 0
    for who in (bearer("street", "YA/YA01"), bearer("district", "YA")):
        assert (await client.post(url, headers=who, **upload(JPEG))).status_code in (200, 201)
    assert await photo_rows(dsn) == 1


# --- reading back -------------------------------------------------------------------------


async def test_list_and_read_back_the_bytes(intake):
    client, dsn = intake
    case_id = await new_case(client)
    before = (
        await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER, **upload(JPEG))
    ).json()
    await set_status(dsn, case_id, "resolved")
    after = (
        await client.post(
            f"/cases/{case_id}/photos?kind=after",
            headers=COMMUNITY,
            **upload(PNG, "p.png", "image/png"),
        )
    ).json()

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
    photo = (
        await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER, **upload(JPEG))
    ).json()
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
    photo = (
        await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER, **upload(JPEG))
    ).json()
    inside = bearer("supervisor", "YA/YA01")
    for who in (inside, COMMUNITY, bearer("district", "YA")):
        assert (await client.get(f"/cases/{case_id}/photos", headers=who)).status_code == 200
        assert (await client.get(photo["url"], headers=who)).status_code == 200
    for who in (
        bearer("supervisor", "YA/YA03"),
        OTHER_WORKER,
        bearer("community", "YA/YA02/YA0201"),
    ):
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


# --- departments' after-photos (issue 5) --------------------------------------------------


async def test_an_assigned_department_adds_its_result_and_it_is_announced(intake, kafka_server):
    client, dsn = intake
    case_id = await new_case(client)
    case = (await client.get(f"/cases/{case_id}", headers=COMMUNITY)).json()
    await client.post(f"/cases/{case_id}/whistle", json={}, headers=COMMUNITY)
    # dispatch's case.dispatched, over the real broker, is what makes cg the case's department
    facts = {
        "case_no": case["case_no"],
        "area_path": case["area_path"],
        "category": "E0101",
        "priority": Priority.NORMAL,
    }
    await publish_event(
        kafka_server.bootstrap,
        new_event(
            CaseDispatched(
                **facts,
                assignment_id=uuid.uuid4(),
                department_id="cg",
                department_name="城管",
                role="lead",
                rule_id=1,
                reason="规则#1",
                description="x",
            ),
            case_id=uuid.UUID(case_id),
            producer="dispatch",
        ),
    )

    async def dispatched():
        got = await client.get(f"/cases/{case_id}", headers=COMMUNITY)
        return got.json()["status"] == "dispatched"

    await eventually(dispatched, timeout=45, message="intake followed case.dispatched")
    assert await photo_events(dsn) == []

    resp = await client.post(f"/cases/{case_id}/photos?kind=after", headers=CG, **upload(JPEG))
    assert resp.status_code == 201, resp.text
    photo = resp.json()
    assert (photo["kind"], photo["uploaded_by"], photo["uploaded_by_department"]) == (
        "after",
        "cg-wang",
        "cg",
    )
    [event] = await photo_events(dsn)
    assert (event["_key"], event["_topic"]) == (case_id, "whistle.intake.events.v1")
    assert (event["type"], event["version"], event["producer"], event["case_id"]) == (
        "case.photo_added",
        1,
        "intake",
        case_id,
    )
    assert event["actor"]["subject"] == "cg-wang" and event["actor"]["role"] == "department"
    assert event["payload"] == {
        **facts,
        "priority": "normal",
        "photo_id": photo["id"],
        "kind": "after",
        "department_id": "cg",
    }

    # cg hands the case on (转办): it is no longer the case's department, its rights end.
    await publish_event(
        kafka_server.bootstrap,
        new_event(
            CaseTransferred(
                **facts,
                assignment_id=uuid.uuid4(),
                department_id="cg",
                to_department_id="zj",
                reason="属住建职责",
            ),
            case_id=uuid.UUID(case_id),
            producer="dispatch",
        ),
    )

    async def cg_gone():
        got = await client.get(f"/cases/{case_id}/photos", headers=CG)
        return got.status_code == 403

    await eventually(cg_gone, timeout=45, message="intake followed case.transferred")
    refused = await client.post(f"/cases/{case_id}/photos?kind=after", headers=CG, **upload(PNG))
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_assigned")
    assert (await client.get(f"/cases/{case_id}", headers=COMMUNITY)).json()[
        "status"
    ] == "dispatched"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("dispatched", 201),
        ("signed_for", 201),
        ("rework", 201),
        ("resolved", 201),
        ("reported", 409),
        ("whistled", 409),
        ("unroutable", 409),
        ("closed", 409),
        ("reopened", 409),
    ],
)
async def test_department_after_photos_between_dispatch_and_closure(intake, status, code):
    client, dsn = intake
    case_id = await new_case(client)
    await dispatched_to(dsn, case_id, "cg", status=status)
    resp = await client.post(f"/cases/{case_id}/photos?kind=after", headers=CG, **upload(JPEG))
    assert resp.status_code == code, resp.text
    if code == 409:
        error = resp.json()["error"]
        assert error["code"] == "invalid_state" and error["message"].startswith("案件当前状态为")
    kept = 1 if code == 201 else 0
    assert await photo_rows(dsn) == kept and len(await photo_events(dsn)) == kept


async def test_a_department_not_assigned_gets_403_and_nothing_changes(intake):
    client, dsn = intake
    case_id = await new_case(client)
    before = (
        await client.post(
            f"/cases/{case_id}/photos?kind=before",
            headers=WORKER,
            **upload(PNG, "p.png", "image/png"),
        )
    ).json()
    await dispatched_to(dsn, case_id, "cg")
    url = f"/cases/{case_id}/photos?kind=after"
    assert (await client.post(url, headers=CG, **upload(JPEG))).status_code == 201
    for who in (XF, bearer("department", department_id="c")):  # a prefix is no match
        # the very bytes the case already holds: no replayed answer leaks past the check
        resp = await client.post(url, headers=who, **upload(JPEG))
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"]["code"] == "not_assigned"
        assert resp.json()["error"]["message"].startswith("本部门")
        listed = await client.get(f"/cases/{case_id}/photos", headers=who)
        assert listed.status_code == 403 and listed.json()["error"]["code"] == "not_assigned"
        got = await client.get(before["url"], headers=who)
        assert got.status_code == 403 and "image" not in got.headers["content-type"]
    assert await photo_rows(dsn) == 2
    assert [e["payload"]["department_id"] for e in await photo_events(dsn)] == [None, "cg"]


async def test_departments_may_not_send_before_photos(intake):
    client, dsn = intake
    case_id = await new_case(client)
    await dispatched_to(dsn, case_id, "cg", status="signed_for")
    url = f"/cases/{case_id}/photos?kind=before"
    zh = await client.post(url, headers=CG, **upload(JPEG))
    assert zh.status_code == 403
    error = zh.json()["error"]
    assert error["code"] == "before_photos_not_for_departments"
    assert error["message"].startswith("职能部门只能上传整改后照片")
    en = await client.post(url, headers={**CG, "Accept-Language": "en"}, **upload(JPEG))
    assert en.json()["error"]["message"].startswith("departments upload after-photos only")
    assert await photo_rows(dsn) == 0 and await photo_events(dsn) == []


async def test_an_idempotent_re_upload_announces_nothing(intake):
    client, dsn = intake
    case_id = await new_case(client)
    await dispatched_to(dsn, case_id, "cg", status="signed_for")
    url = f"/cases/{case_id}/photos?kind=after"
    answers = await asyncio.gather(
        *(client.post(url, headers=CG, **upload(JPEG)) for _ in range(3))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 201]
    again = await client.post(url, headers=CG, **upload(JPEG))
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    events = await photo_events(dsn)
    assert [e["payload"]["photo_id"] for e in events] == [again.json()["id"]]
    assert await photo_rows(dsn) == 1


async def test_nine_after_photos_whoever_sends_them_and_one_event_each(intake):
    client, dsn = intake
    case_id = await new_case(client)
    await dispatched_to(dsn, case_id, "cg", "zj", status="resolved")  # 主办 cg, 协办 zj
    zj = bearer("department", department_id="zj", subject="zj-liu")
    pictures = [picture("JPEG", (32, 32), (100, 20 * i, 50)) for i in range(11)]
    answers = await asyncio.gather(
        *(
            client.post(
                f"/cases/{case_id}/photos?kind=after", headers=(CG, zj, WORKER)[i % 3], **upload(p)
            )
            for i, p in enumerate(pictures)
        )
    )
    assert sorted(a.status_code for a in answers) == [201] * 9 + [409] * 2
    assert await photo_rows(dsn) == 9
    events = await photo_events(dsn)
    kept = {
        a.json()["id"]: a.json()["uploaded_by_department"] for a in answers if a.status_code == 201
    }
    assert {e["payload"]["photo_id"]: e["payload"]["department_id"] for e in events} == kept
    assert set(kept.values()) <= {"cg", "zj", None} and len(events) == 9


async def test_an_assigned_department_reads_the_photos(intake):
    client, dsn = intake
    case_id = await new_case(client)
    before = (
        await client.post(f"/cases/{case_id}/photos?kind=before", headers=WORKER, **upload(JPEG))
    ).json()
    assert before["uploaded_by_department"] is None
    await dispatched_to(dsn, case_id, "zj", "cg", status="resolved")
    after = (
        await client.post(
            f"/cases/{case_id}/photos?kind=after", headers=CG, **upload(PNG, "p.png", "image/png")
        )
    ).json()
    for who in (CG, bearer("department", department_id="zj")):
        listed = await client.get(f"/cases/{case_id}/photos", headers=who)
        assert listed.status_code == 200 and listed.json() == [before, after]
        for meta, data in ((before, JPEG), (after, PNG)):
            got = await client.get(meta["url"], headers=who)
            assert got.status_code == 200 and got.content == data
            etag = {"If-None-Match": got.headers["etag"]}
            assert (await client.get(meta["url"], headers={**who, **etag})).status_code == 304
    # the community sees who took the after-photo
    seen = (await client.get(f"/cases/{case_id}/photos?kind=after", headers=COMMUNITY)).json()
    assert [(p["uploaded_by"], p["uploaded_by_department"]) for p in seen] == [("cg-wang", "cg")]
