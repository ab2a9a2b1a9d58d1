"""The jurisdiction tree's HTTP API (issue 4, item 1) and reporting by a point (item 2),
against real PostgreSQL and the real broker."""

from __future__ import annotations

import asyncpg
import pytest

from services.intake.demo import seed_demo
from services.intake import demo as jdemo
from shared import demo
from tests.intake_app import running_intake
from tests.helpers import as_user, bearer, fetchval, table_digest_sql, truncate

ADMIN = as_user("admin")
COMMUNITY = as_user("taoyuan")  # 桃园社区 YA/YA01/YA0101
WANGFANG = as_user("wangfang")  # grids YA0101-03 and YA0101-04
LIHUA = as_user("lihua")  # grid YA0302-04
DEMO_CODES = [a.code for a in demo.areas()]
FAR = (30.0, 120.0)  # (lat, lon) far from 榆安区


@pytest.fixture(scope="module")
async def jurisdiction_app(pg_server, kafka_server):
    async with running_intake(pg_server, kafka_server, report_rate_limit_per_minute=100) as (
        client,
        dsn,
        settings,
    ):
        yield client, dsn, settings


@pytest.fixture
async def api(jurisdiction_app):
    """One app for the module; each test starts from no cases and the demo tree as seeded."""
    client, dsn, settings = jurisdiction_app
    conn = await asyncpg.connect(dsn)
    try:
        await truncate(dsn, "cases", "idempotency_keys", "outbox", "inbox")
        await conn.execute("DELETE FROM grid_workers")
        await conn.execute("DELETE FROM areas WHERE code <> ALL($1::text[])", DEMO_CODES)
    finally:
        await conn.close()
    await seed_demo(settings)
    return client, dsn


async def snapshot(dsn: str) -> list[str]:
    """A digest of everything this API could change."""
    return [
        await fetchval(dsn, table_digest_sql(t))
        for t in ("areas", "grid_workers", "cases", "outbox")
    ]


def square(w: float, s: float, e: float, n: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def report(**change) -> dict:
    return {"category": "E0101", "description": "楼道堆放杂物", "priority": "normal", **change}


# --- reading ------------------------------------------------------------------------------


async def test_get_area_for_any_role_with_path_level_and_boundary(api):
    client, _ = api
    for who in (LIHUA, bearer("department", department_id="cg"), ADMIN):
        grid = await client.get("/areas/YA0101-03", headers=who)
        assert grid.status_code == 200, grid.text
    body = grid.json()
    assert body["path"] == "YA/YA01/YA0101/YA0101-03" and body["level"] == "grid"
    assert body["level_label"] == "网格" and body["parent_code"] == "YA0101"
    assert body["boundary"] == jdemo.boundary("YA0101-03") and body["has_boundary"]
    assert body["bbox"] == list(jdemo.rectangle("YA0101-03"))
    district = (await client.get("/areas/YA", headers=LIHUA)).json()
    assert (district["level"], district["path"], district["boundary"]) == ("district", "YA", None)
    missing = await client.get("/areas/NOPE", headers=LIHUA)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "area_not_found"
    assert missing.json()["error"]["message"] == "区域“NOPE”不存在"
    assert (await client.get("/areas/YA0101-03")).status_code == 401
    # The listing that was there before keeps working.
    listed = (await client.get("/areas", params={"parent": "YA0101"}, headers=LIHUA)).json()
    assert len(listed) == 9 and listed[2]["code"] == "YA0101-03"


async def test_a_subtree_as_geojson_names_every_area_and_draws_its_grids(api):
    """One call gives a map (网格地图) and the names of every code in a subtree; no token."""
    client, _ = api
    r = await client.get("/areas/features", params={"root": "YA/YA01/YA0101"}, headers=LIHUA)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "FeatureCollection"
    features = {f["id"]: f for f in body["features"]}
    assert len(features) == 1 + 9  # the community and its nine grids
    community = features["YA0101"]
    assert community["geometry"] is None
    assert community["properties"]["name"] == "桃园社区"
    grid = features["YA0101-03"]
    assert grid["type"] == "Feature" and grid["geometry"] == jdemo.boundary("YA0101-03")
    assert grid["properties"] == {
        "code": "YA0101-03",
        "name": "桃园社区第3网格",
        "level": "grid",
        "parent_code": "YA0101",
        "path": "YA/YA01/YA0101/YA0101-03",
    }
    whole = (await client.get("/areas/features", params={"root": "YA"}, headers=LIHUA)).json()
    assert len(whole["features"]) == 1 + 4 + 16 + 142
    # Whole path segments only: YA/YA0 is not a prefix of YA/YA01.
    for root, status in (("YA/YA0", 404), ("NOPE", 404), ("YA/%", 422), ("", 422)):
        bad = await client.get("/areas/features", params={"root": root}, headers=LIHUA)
        assert bad.status_code == status, (root, bad.text)
    # Public reference data (like dispatch's catalogue): no token needed, and without a root
    # the whole jurisdiction, every district (what notify keeps to name places in messages).
    public = await client.get("/areas/features", params={"root": "YA"})
    assert public.status_code == 200 and public.json() == whole
    everything = await client.get("/areas/features")
    assert everything.status_code == 200 and everything.json() == whole
    second = await client.put(
        "/areas/XD", headers=ADMIN, json={"name": "新区", "level": "district"}
    )
    assert second.status_code == 201, second.text
    both = (await client.get("/areas/features")).json()["features"]
    assert [f["id"] for f in both] == ["XD", *[f["id"] for f in whole["features"]]]  # by path
    assert len(
        (await client.get("/areas/features", params={"root": "YA"})).json()["features"]
    ) == len(whole["features"])


async def test_locate_finds_the_grid_holding_a_point(api):
    client, _ = api
    lat, lon = jdemo.centre("YA0302-04")
    resp = await client.get(
        "/areas/locate",
        params={"lat": lat, "lon": lon},
        headers=bearer("department", department_id="cg"),
    )
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert (got["code"], got["path"], got["micro_grid"]) == (
        "YA0302-04",
        "YA/YA03/YA0302/YA0302-04",
        None,
    )
    outside = await client.get(
        "/areas/locate", params={"lat": FAR[0], "lon": FAR[1]}, headers=LIHUA
    )
    assert outside.status_code == 404
    assert outside.json()["error"] == {
        "code": "point_outside_grids",
        "message": "该位置不在任何网格内",
    }
    for params in (
        {"lat": 91, "lon": 112.5},
        {"lat": 37.8, "lon": -181},
        {"lat": 37.8},
        {"lat": "north", "lon": 112.5},
    ):
        bad = await client.get("/areas/locate", params=params, headers=LIHUA)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    assert (await client.get("/areas/locate", params={"lat": lat, "lon": lon})).status_code == 401


async def test_locate_names_the_micro_grid_too(api):
    client, _ = api
    w, s, e, n = jdemo.rectangle("YA0101-03")
    put = await client.put(
        "/areas/YA0101-03-A",
        headers=ADMIN,
        json={"name": "3号楼", "level": "micro_grid", "parent_code": "YA0101-03"},
    )
    assert put.status_code == 201, put.text
    assert put.json()["path"] == "YA/YA01/YA0101/YA0101-03/YA0101-03-A"
    micro = square(w, s, (w + e) / 2, n)
    assert (
        await client.put("/areas/YA0101-03-A/boundary", json=micro, headers=ADMIN)
    ).status_code == 200
    got = (
        await client.get(
            "/areas/locate", params={"lat": (s + n) / 2, "lon": w + 0.0005}, headers=LIHUA
        )
    ).json()
    assert got["code"] == "YA0101-03" and got["micro_grid"]["code"] == "YA0101-03-A"


# --- changing the tree --------------------------------------------------------------------


async def test_put_area_creates_renames_and_moves_a_leaf(api):
    client, dsn = api
    body = {"name": "和平社区第90网格", "level": "grid", "parent_code": "YA0404"}
    created = await client.put("/areas/YA0404-90", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/areas/YA0404-90"
    assert created.json()["path"] == "YA/YA04/YA0404/YA0404-90"
    again = await client.put("/areas/YA0404-90", json=body, headers=ADMIN)
    assert again.status_code == 200 and again.json()["updated_at"] == created.json()["updated_at"]
    renamed = await client.put(
        "/areas/YA0404-90", json={**body, "name": "和平社区新网格"}, headers=ADMIN
    )
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["path"]) == (
        "和平社区新网格",
        "YA/YA04/YA0404/YA0404-90",
    )
    moved = await client.put(
        "/areas/YA0404-90", headers=ADMIN, json={**body, "parent_code": "YA0403"}
    )
    assert moved.json()["path"] == "YA/YA04/YA0403/YA0404-90"
    listed = (await client.get("/areas", params={"parent": "YA0403"}, headers=ADMIN)).json()
    assert "YA0404-90" in [a["code"] for a in listed]
    # A new street, then a community under it: levels follow the parent.
    street = await client.put(
        "/areas/YA05",
        headers=ADMIN,
        json={"name": "南湖街道", "level": "street", "parent_code": "YA"},
    )
    assert street.status_code == 201 and street.json()["path"] == "YA/YA05"
    assert (
        await fetchval(
            dsn, "SELECT count(*) FROM areas WHERE code = ANY($1::text[])", ["YA0404-90", "YA05"]
        )
        == 2
    )


async def test_moving_a_node_with_children_or_cases_is_refused(api):
    client, dsn = api
    before = await snapshot(dsn)
    community = await client.put(
        "/areas/YA0101",
        headers=ADMIN,
        json={"name": "桃园社区", "level": "community", "parent_code": "YA02"},
    )
    assert community.status_code == 409
    assert community.json()["error"]["code"] == "area_has_children"
    assert "YA0101" in community.json()["error"]["message"]
    assert await snapshot(dsn) == before
    case = await client.post("/cases", json=report(grid_code="YA0101-01"), headers=COMMUNITY)
    assert case.status_code == 201, case.text
    before = await snapshot(dsn)
    grid = await client.put(
        "/areas/YA0101-01",
        headers=ADMIN,
        json={"name": "桃园社区第1网格", "level": "grid", "parent_code": "YA0102"},
    )
    assert grid.status_code == 409 and grid.json()["error"]["code"] == "area_has_cases"
    assert await snapshot(dsn) == before
    # Renaming in place is still fine.
    renamed = await client.put(
        "/areas/YA0101-01",
        headers=ADMIN,
        json={"name": "桃园一网格", "level": "grid", "parent_code": "YA0101"},
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "桃园一网格"


@pytest.mark.parametrize(
    ("code", "body", "status", "error"),
    [
        (
            "YA0404-90",
            {"name": "x", "level": "community", "parent_code": "YA0404"},
            422,
            "wrong_level",
        ),
        ("YA0404-90", {"name": "x", "level": "grid", "parent_code": "YA04"}, 422, "wrong_level"),
        ("YA0404-90", {"name": "x", "level": "grid"}, 422, "wrong_level"),
        ("YA0404-90", {"name": "x", "level": "grid", "parent_code": "NOPE"}, 422, "unknown_parent"),
        (
            "YA0404-90",
            {"name": "x", "level": "county", "parent_code": "YA0404"},
            422,
            "validation_error",
        ),
        (
            "YA0404-90",
            {"name": "", "level": "grid", "parent_code": "YA0404"},
            422,
            "validation_error",
        ),
        (
            "YA0404-90",
            {"name": "x", "level": "grid", "parent_code": "YA0404", "x": 1},
            422,
            "validation_error",
        ),
        (
            "bad code!",
            {"name": "x", "level": "grid", "parent_code": "YA0404"},
            422,
            "validation_error",
        ),
    ],
)
async def test_bad_area_writes_say_what_is_wrong_and_change_nothing(api, code, body, status, error):
    client, dsn = api
    before = await snapshot(dsn)
    resp = await client.put(f"/areas/{code}", json=body, headers=ADMIN)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == error and resp.json()["error"]["message"]
    assert await snapshot(dsn) == before


async def test_only_the_administrator_writes_the_tree(api):
    client, dsn = api
    before = await snapshot(dsn)
    writes = [
        ("PUT", "/areas/YA0404-90", {"name": "x", "level": "grid", "parent_code": "YA0404"}),
        ("PUT", "/areas/YA0404-08/boundary", jdemo.boundary("YA0404-08")),
        (
            "POST",
            "/areas/import",
            {
                "areas": [
                    {"code": "YA0404-90", "name": "x", "level": "grid", "parent_code": "YA0404"}
                ]
            },
        ),
        ("PUT", "/grids/YA0101-03/workers", {"subjects": ["someone"]}),
    ]
    for method, path, body in writes:
        for who in (COMMUNITY, WANGFANG, bearer("district"), bearer("supervisor")):
            resp = await client.request(method, path, json=body, headers=who)
            assert resp.status_code == 403, (path, resp.text)
            assert resp.json()["error"]["code"] == "role_not_allowed"
        resp = await client.request(method, path, json=body)
        assert resp.status_code == 401, (path, resp.text)
    assert await snapshot(dsn) == before


# --- boundaries ---------------------------------------------------------------------------


async def test_put_boundary_checks_geojson_level_and_overlap(api):
    client, dsn = api
    await client.put(
        "/areas/YA0404-90",
        headers=ADMIN,
        json={"name": "和平社区第90网格", "level": "grid", "parent_code": "YA0404"},
    )
    free = square(112.60, 37.80, 112.604, 37.803)
    resp = await client.put("/areas/YA0404-90/boundary", json=free, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    assert resp.json()["boundary"] == free and resp.json()["bbox"] == [
        112.60,
        37.80,
        112.604,
        37.803,
    ]
    located = await client.get(
        "/areas/locate", params={"lat": 37.801, "lon": 112.602}, headers=LIHUA
    )
    assert located.json()["code"] == "YA0404-90"
    before = await snapshot(dsn)
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[112.6, 37.8], [112.61, 37.81], [112.61, 37.8], [112.6, 37.81], [112.6, 37.8]]
        ],
    }
    cases = [
        ("YA0404-90", bowtie, 422, "invalid_boundary", "自相交"),
        (
            "YA0404-90",
            {"type": "Point", "coordinates": [112.6, 37.8]},
            422,
            "invalid_boundary",
            "Polygon 或 MultiPolygon",
        ),
        ("YA0404-90", square(112.6, 37.8, 112.6, 37.8), 422, "invalid_boundary", "边界无效"),
        (
            "YA0404-90",
            {
                "type": "Polygon",
                "coordinates": [[[112.6, 95], [112.7, 37.8], [112.7, 37.9], [112.6, 95]]],
            },
            422,
            "invalid_boundary",
            "纬度 95",
        ),
        ("YA0404", free, 422, "not_a_grid", "社区"),
        ("NOPE", free, 404, "area_not_found", "NOPE"),
        # half over the demo grid YA0404-08
        (
            "YA0404-90",
            square(*jdemo.rectangle("YA0404-08")[:2], 112.568 + 0.004, 37.855),
            409,
            "boundary_overlaps",
            "YA0404-08",
        ),
    ]
    for code, geojson, status, error, says in cases:
        resp = await client.put(f"/areas/{code}/boundary", json=geojson, headers=ADMIN)
        assert resp.status_code == status, (code, geojson, resp.text)
        assert resp.json()["error"]["code"] == error and says in resp.json()["error"]["message"]
    assert (
        await client.put("/areas/YA0404-90/boundary", content=b"[1, 2]", headers=ADMIN)
    ).status_code == 422
    assert await snapshot(dsn) == before


# --- import -------------------------------------------------------------------------------


NEW_STREET = [  # given children first: the import orders them
    {
        "code": "YA0501-01",
        "name": "南湖社区第1网格",
        "level": "grid",
        "parent_code": "YA0501",
        "boundary": square(112.60, 37.80, 112.604, 37.803),
    },
    {
        "code": "YA0501-02",
        "name": "南湖社区第2网格",
        "level": "grid",
        "parent_code": "YA0501",
        "boundary": {"type": "Feature", "geometry": square(112.604, 37.80, 112.608, 37.803)},
    },
    {"code": "YA0501", "name": "南湖社区", "level": "community", "parent_code": "YA05"},
    {"code": "YA05", "name": "南湖街道", "level": "street", "parent_code": "YA"},
]


async def test_import_loads_a_subtree_in_one_go_and_again_changes_nothing(api):
    client, dsn = api
    resp = await client.post("/areas/import", json={"areas": NEW_STREET}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"created": 4, "updated": 0, "unchanged": 0}
    grid = (await client.get("/areas/YA0501-02", headers=ADMIN)).json()
    assert grid["path"] == "YA/YA05/YA0501/YA0501-02" and grid["has_boundary"]
    got = (
        await client.get("/areas/locate", params={"lat": 37.801, "lon": 112.606}, headers=ADMIN)
    ).json()
    assert got["code"] == "YA0501-02"
    before = await snapshot(dsn)
    again = await client.post("/areas/import", json={"areas": NEW_STREET}, headers=ADMIN)
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 4}
    assert await snapshot(dsn) == before
    renamed = [{**NEW_STREET[3], "name": "南湖新街道"}]
    assert (await client.post("/areas/import", json={"areas": renamed}, headers=ADMIN)).json() == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
    }


async def test_the_whole_demo_tree_imports_as_unchanged(api):
    client, dsn = api
    tree = [
        {
            "code": a.code,
            "name": a.name,
            "level": a.level,
            "parent_code": a.parent,
            **({"boundary": jdemo.boundary(a.code)} if a.level == "grid" else {}),
        }
        for a in reversed(demo.areas())
    ]  # children first, on purpose
    before = await snapshot(dsn)
    resp = await client.post("/areas/import", json={"areas": tree}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"created": 0, "updated": 0, "unchanged": len(tree)}
    assert await snapshot(dsn) == before


@pytest.mark.parametrize(
    ("broken", "error", "names"),
    [
        (
            {"code": "YA0501-03", "name": "x", "level": "community", "parent_code": "YA0501"},
            "wrong_level",
            "YA0501-03",
        ),
        (
            {"code": "YA0501-03", "name": "x", "level": "grid", "parent_code": "YA0599"},
            "unknown_parent",
            "YA0599",
        ),
        (
            {"code": "YA0501-01", "name": "x", "level": "grid", "parent_code": "YA0502"},
            "duplicate_code",
            "YA0501-01",
        ),
        (
            {
                "code": "YA0501-03",
                "name": "x",
                "level": "grid",
                "parent_code": "YA0501",
                "boundary": {"type": "Polygon", "coordinates": [[[112.61, 37.8], [112.62, 37.8]]]},
            },
            "invalid_boundary",
            "YA0501-03",
        ),
        (
            {
                "code": "YA0501-03",
                "name": "x",
                "level": "grid",
                "parent_code": "YA0501",
                "boundary": jdemo.boundary("YA0101-03"),
            },
            "boundary_overlaps",
            "YA0101-03",
        ),
        (
            {"code": "YA0101", "name": "桃园社区", "level": "community", "parent_code": "YA05"},
            "area_has_children",
            "YA0101",
        ),
    ],
)
async def test_import_is_all_or_nothing_and_names_the_offending_code(api, broken, error, names):
    client, dsn = api
    before = await snapshot(dsn)
    resp = await client.post("/areas/import", json={"areas": [*NEW_STREET, broken]}, headers=ADMIN)
    assert resp.status_code in (404, 409, 422), resp.text
    assert resp.json()["error"]["code"] == error
    assert names in resp.json()["error"]["message"], resp.json()
    assert await snapshot(dsn) == before  # not even the good rows before it


async def test_import_validates_its_shape(api):
    client, dsn = api
    before = await snapshot(dsn)
    for body in ({"areas": []}, {"areas": [{"code": "Y", "name": "x"}]}, {"nodes": []}):
        resp = await client.post("/areas/import", json=body, headers=ADMIN)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"
    assert await snapshot(dsn) == before


# --- grid workers -------------------------------------------------------------------------


async def test_grid_workers_are_assigned_by_the_administrator_and_read_in_scope(api):
    client, dsn = api
    seeded = await client.get("/grids/YA0302-04/workers", headers=LIHUA)
    assert seeded.status_code == 200 and seeded.json() == {
        "grid_code": "YA0302-04",
        "path": "YA/YA03/YA0302/YA0302-04",
        "subjects": ["lihua"],
    }
    assert (await client.get("/grids/YA0101-04/workers", headers=WANGFANG)).json()["subjects"] == [
        "wangfang"
    ]
    put = await client.put(
        "/grids/YA0101-03/workers",
        headers=ADMIN,
        json={"subjects": ["zhaolei", "wangfang", "zhaolei"]},
    )
    assert put.status_code == 200 and put.json()["subjects"] == ["wangfang", "zhaolei"]
    assert (await client.get("/grids/YA0101-03/workers", headers=COMMUNITY)).json()["subjects"] == [
        "wangfang",
        "zhaolei",
    ]
    assert (await client.get("/grids/YA0101-03/workers", headers=ADMIN)).status_code == 200
    for outsider in (LIHUA, as_user("jinxiu"), as_user("donghu")):
        denied = await client.get("/grids/YA0101-03/workers", headers=outsider)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "out_of_scope"
    dept = await client.get(
        "/grids/YA0101-03/workers", headers=bearer("department", department_id="cg")
    )
    assert dept.status_code == 403
    cleared = await client.put("/grids/YA0101-03/workers", json={"subjects": []}, headers=ADMIN)
    assert cleared.json()["subjects"] == []
    before = await snapshot(dsn)
    community = await client.put("/grids/YA0101/workers", json={"subjects": ["x"]}, headers=ADMIN)
    assert community.status_code == 422 and community.json()["error"]["code"] == "not_a_grid"
    missing = await client.put("/grids/NOPE/workers", json={"subjects": ["x"]}, headers=ADMIN)
    assert missing.status_code == 404
    bad = await client.put("/grids/YA0101-03/workers", json={"subjects": [""]}, headers=ADMIN)
    assert bad.status_code == 422
    assert await snapshot(dsn) == before


async def test_demo_seeding_is_idempotent(api, jurisdiction_app):
    _, dsn = api
    _, _, settings = jurisdiction_app
    before = await snapshot(dsn)
    await seed_demo(settings)
    assert await snapshot(dsn) == before
    assert await fetchval(dsn, "SELECT count(*) FROM areas WHERE boundary IS NOT NULL") == 142
    assert await fetchval(dsn, "SELECT count(*) FROM grid_workers") == 3


# --- reporting by a point (网格定位) -------------------------------------------------------


async def test_a_point_without_a_grid_is_placed_in_its_grid(api):
    client, dsn = api
    lat, lon = jdemo.centre("YA0101-04")
    resp = await client.post(
        "/cases", json=report(location={"lat": lat, "lon": lon}), headers=WANGFANG
    )
    assert resp.status_code == 201, resp.text
    case = resp.json()
    assert (case["grid_code"], case["area_path"]) == ("YA0101-04", "YA/YA01/YA0101/YA0101-04")
    assert (case["location"]["lat"], case["location"]["lon"]) == (lat, lon)
    assert (
        await fetchval(dsn, "SELECT grid_code FROM cases WHERE id = $1::text::uuid", case["id"])
        == "YA0101-04"
    )
    payload = await fetchval(dsn, "SELECT payload::json->'payload'->>'grid_code' FROM outbox")
    assert payload == "YA0101-04"


async def test_a_point_outside_every_grid_is_refused_and_changes_nothing(api):
    client, dsn = api
    before = await snapshot(dsn)
    resp = await client.post(
        "/cases", json=report(location={"lat": FAR[0], "lon": FAR[1]}), headers=COMMUNITY
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "point_outside_grids"
    assert "不在任何网格内" in resp.json()["error"]["message"]
    assert await snapshot(dsn) == before


async def test_a_point_in_another_grid_than_the_named_one_is_refused(api):
    client, dsn = api
    before = await snapshot(dsn)
    lat, lon = jdemo.centre("YA0101-04")
    resp = await client.post(
        "/cases",
        json=report(grid_code="YA0101-03", location={"lat": lat, "lon": lon}),
        headers=WANGFANG,
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "point_not_in_grid"
    assert "YA0101-04" in error["message"] and "YA0101-03" in error["message"]
    assert await snapshot(dsn) == before
    # Inside its grid, or a few metres over the edge (GPS drift), or outside every grid: fine.
    _, s, e, n = jdemo.rectangle("YA0101-03")
    for point in (jdemo.centre("YA0101-03"), ((s + n) / 2, e + 0.0001), FAR):
        ok = await client.post(
            "/cases",
            json=report(grid_code="YA0101-03", location={"lat": point[0], "lon": point[1]}),
            headers=WANGFANG,
        )
        assert ok.status_code == 201, (point, ok.text)
        assert ok.json()["grid_code"] == "YA0101-03"


async def test_scope_is_checked_on_the_placed_grid(api):
    client, dsn = api
    before = await snapshot(dsn)
    lat, lon = jdemo.centre("YA0302-04")  # lihua's grid, not wangfang's
    resp = await client.post(
        "/cases", json=report(location={"lat": lat, "lon": lon}), headers=WANGFANG
    )
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "out_of_scope"
    assert "YA/YA03/YA0302/YA0302-04" in resp.json()["error"]["message"]
    assert await snapshot(dsn) == before
    mine = await client.post(
        "/cases", json=report(location={"lat": lat, "lon": lon}), headers=LIHUA
    )
    assert mine.status_code == 201 and mine.json()["grid_code"] == "YA0302-04"


@pytest.mark.parametrize(
    "location", [{}, {"lat": 37.88}, {"address": "桃园小区3号楼"}, {"lat": 95, "lon": 112.5}]
)
async def test_a_report_needs_a_grid_or_a_point(api, location):
    client, dsn = api
    resp = await client.post("/cases", json=report(location=location), headers=COMMUNITY)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"
    assert await fetchval(dsn, "SELECT count(*) FROM cases") == 0
