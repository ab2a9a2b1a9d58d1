"""The jurisdiction tree's rules (levels, paths, moves, imports, placing a point) and the
geometry adapter (GeoJSON checks, containment, distances, overlaps)."""

from __future__ import annotations

import itertools

import pytest

from services.intake import demo as jdemo
from services.intake.domain import geometry
from services.intake.domain.jurisdiction import (
    Area,
    AreaSpec,
    Attached,
    Level,
    check_bounded,
    choose_grid,
    expected_level,
    import_order,
    pick_grid,
    place,
)
from shared import demo
from shared.errors import Conflict, Invalid

DISTRICT = Area("YA", "榆安区", Level.DISTRICT, None, "YA")
STREET = Area("YA01", "迎泽街道", Level.STREET, "YA", "YA/YA01")
COMMUNITY = Area("YA0101", "桃园社区", Level.COMMUNITY, "YA01", "YA/YA01/YA0101")
OTHER_COMMUNITY = Area("YA0102", "柳巷社区", Level.COMMUNITY, "YA01", "YA/YA01/YA0102")
GRID = Area("YA0101-03", "桃园社区第3网格", Level.GRID, "YA0101", "YA/YA01/YA0101/YA0101-03")
MICRO = Area("YA0101-03-A", "3号楼", Level.MICRO_GRID, "YA0101-03", f"{GRID.path}/YA0101-03-A")


def spec(code: str, level: Level, parent: str | None, name: str = "某区域") -> AreaSpec:
    return AreaSpec(code, name, level, parent)


def square(w: float, s: float, e: float, n: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


# --- levels and paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parent", "level"),
    [
        (None, Level.DISTRICT),
        (DISTRICT, Level.STREET),
        (STREET, Level.COMMUNITY),
        (COMMUNITY, Level.GRID),
        (GRID, Level.MICRO_GRID),
    ],
)
def test_each_level_is_exactly_one_below_its_parent(parent, level):
    assert expected_level(parent) is level
    code = "X1"
    area = place(spec(code, level, parent.code if parent else None), existing=None, parent=parent)
    assert area.path == (f"{parent.path}/{code}" if parent else code)
    assert area.level is level


def test_a_micro_grid_has_no_children():
    with pytest.raises(Invalid) as err:
        place(spec("U1", Level.MICRO_GRID, MICRO.code), existing=None, parent=MICRO)
    assert err.value.code == "wrong_level" and "微网格" in err.value.zh


@pytest.mark.parametrize(
    ("level", "parent"),
    [
        (Level.GRID, STREET),  # skips the community
        (Level.COMMUNITY, COMMUNITY),  # a sibling level
        (Level.STREET, None),  # no parent: must be a district
        (Level.DISTRICT, STREET),  # a district under a street
    ],
)
def test_wrong_level_is_refused_naming_the_levels(level, parent):
    with pytest.raises(Invalid) as err:
        place(spec("X1", level, parent.code if parent else None), existing=None, parent=parent)
    assert err.value.code == "wrong_level"
    assert "X1" in err.value.zh and "X1" in err.value.en


def test_unknown_parent_and_own_parent_and_bad_code():
    with pytest.raises(Invalid) as err:
        place(spec("YA0101-99", Level.GRID, "NOPE"), existing=None, parent=None)
    assert err.value.code == "unknown_parent" and "NOPE" in err.value.zh
    with pytest.raises(Invalid) as err:
        place(spec("YA0101", Level.COMMUNITY, "YA0101"), existing=COMMUNITY, parent=COMMUNITY)
    assert err.value.code == "wrong_parent"
    for bad in ("", "has space", "a/b", "-lead", "x" * 65, "网格"):
        with pytest.raises(Invalid) as err:
            place(spec(bad, Level.DISTRICT, None), existing=None, parent=None)
        assert err.value.code == "invalid_code"


def test_renaming_keeps_code_and_path():
    renamed = place(
        spec(GRID.code, Level.GRID, COMMUNITY.code, "桃园第三网格"),
        existing=GRID,
        parent=COMMUNITY,
        attached=Attached(children=3, cases=10, boundary=True, workers=2),
    )
    assert (renamed.code, renamed.path, renamed.name) == (GRID.code, GRID.path, "桃园第三网格")


def test_moving_a_leaf_derives_the_new_path():
    moved = place(
        spec(GRID.code, Level.GRID, OTHER_COMMUNITY.code),
        existing=GRID,
        parent=OTHER_COMMUNITY,
        attached=Attached(boundary=True, workers=1),
    )
    assert moved.path == "YA/YA01/YA0102/YA0101-03" and moved.parent_code == "YA0102"


def test_moving_a_node_with_children_or_cases_is_refused():
    with pytest.raises(Conflict) as err:
        place(
            spec(GRID.code, Level.GRID, OTHER_COMMUNITY.code),
            existing=GRID,
            parent=OTHER_COMMUNITY,
            attached=Attached(children=2),
        )
    assert err.value.code == "area_has_children" and err.value.status_code == 409
    assert "YA0101-03" in err.value.zh
    with pytest.raises(Conflict) as err:
        place(
            spec(GRID.code, Level.GRID, OTHER_COMMUNITY.code),
            existing=GRID,
            parent=OTHER_COMMUNITY,
            attached=Attached(cases=1),
        )
    assert err.value.code == "area_has_cases"


def test_a_grid_with_boundary_or_workers_cannot_become_a_community():
    with pytest.raises(Conflict) as err:
        place(
            spec(GRID.code, Level.COMMUNITY, STREET.code),
            existing=GRID,
            parent=STREET,
            attached=Attached(workers=1),
        )
    assert err.value.code == "area_in_use"
    # A bare grid may (it is then a community).
    assert (
        place(spec(GRID.code, Level.COMMUNITY, STREET.code), existing=GRID, parent=STREET).path
        == "YA/YA01/YA0101-03"
    )


def test_boundaries_and_workers_only_on_grids():
    check_bounded(GRID, "边界", "boundaries")
    check_bounded(MICRO, "边界", "boundaries")
    with pytest.raises(Invalid) as err:
        check_bounded(COMMUNITY, "边界", "boundaries")
    assert err.value.code == "not_a_grid"


# --- imports ------------------------------------------------------------------------------


def test_import_puts_parents_before_children_whatever_the_order():
    rows = [
        spec("G1", Level.GRID, "C1"),
        spec("C1", Level.COMMUNITY, "S1"),
        spec("S1", Level.STREET, "YA"),
        spec("G2", Level.GRID, "C1"),
    ]
    order = [s.code for s in import_order(rows)]
    assert order.index("S1") < order.index("C1") < order.index("G1")
    assert sorted(order) == ["C1", "G1", "G2", "S1"]


def test_import_refuses_a_duplicate_code_naming_it():
    rows = [spec("C1", Level.COMMUNITY, "S1"), spec("C1", Level.COMMUNITY, "S2")]
    with pytest.raises(Invalid) as err:
        import_order(rows)
    assert err.value.code == "duplicate_code"
    assert "C1" in err.value.zh and "S1" in err.value.zh and "S2" in err.value.zh


def test_import_refuses_a_cycle():
    rows = [spec("A", Level.STREET, "B"), spec("B", Level.COMMUNITY, "A")]
    with pytest.raises(Invalid) as err:
        import_order(rows)
    assert err.value.code == "import_cycle" and "A" in err.value.zh and "B" in err.value.zh


# --- placing a point ------------------------------------------------------------------------


def test_pick_grid_prefers_the_grid_and_breaks_ties_by_code():
    other = Area("YA0101-02", "第2网格", Level.GRID, "YA0101", "YA/YA01/YA0101/YA0101-02")
    assert pick_grid([]) is None
    assert pick_grid([GRID, other]) == ("YA0101-02", None)  # on the shared edge
    assert pick_grid([MICRO, GRID]) == ("YA0101-03", "YA0101-03-A")
    assert pick_grid([MICRO]) == ("YA0101-03", "YA0101-03-A")  # grid without a boundary


def test_choose_grid_rules():
    kw = {"lat": 37.88, "lon": 112.53}
    assert choose_grid(None, "G1", named_bounded=False, near_named=False, **kw) == "G1"
    with pytest.raises(Invalid) as err:
        choose_grid(None, None, named_bounded=False, near_named=False, **kw)
    assert err.value.code == "point_outside_grids"
    assert choose_grid("G1", "G1", named_bounded=True, near_named=True, **kw) == "G1"
    assert choose_grid("G1", None, named_bounded=True, near_named=False, **kw) == "G1"
    assert choose_grid("G1", "G2", named_bounded=False, near_named=False, **kw) == "G1"
    assert choose_grid("G1", "G2", named_bounded=True, near_named=True, **kw) == "G1"  # GPS drift
    with pytest.raises(Invalid) as err:
        choose_grid("G1", "G2", named_bounded=True, near_named=False, **kw)
    assert err.value.code == "point_not_in_grid" and "G2" in err.value.zh and "G1" in err.value.zh


# --- GeoJSON ------------------------------------------------------------------------------


def test_a_polygon_is_normalised_with_its_bounding_box():
    b = geometry.parse_boundary(
        {
            "type": "Polygon",
            "coordinates": [
                [[112.5, 37.8, 800], [112.6, 37.8, 800], [112.6, 37.9, 800], [112.5, 37.8, 800]]
            ],
        }
    )
    assert b.geojson["type"] == "Polygon"
    assert b.geojson["coordinates"][0][0] == [112.5, 37.8]  # altitude dropped
    assert b.bbox == (112.5, 37.8, 112.6, 37.9)


def test_a_feature_and_a_multipolygon_are_accepted():
    feature = {"type": "Feature", "properties": {}, "geometry": square(0, 0, 1, 1)}
    assert geometry.parse_boundary(feature).geojson == square(0, 0, 1, 1)
    multi = {
        "type": "MultiPolygon",
        "coordinates": [square(0, 0, 1, 1)["coordinates"], square(2, 2, 3, 3)["coordinates"]],
    }
    b = geometry.parse_boundary(multi)
    assert b.bbox == (0, 0, 3, 3)
    assert geometry.covers(b.shape, 2.5, 2.5) and not geometry.covers(b.shape, 1.5, 1.5)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([1, 2], "GeoJSON"),
        ({"type": "Point", "coordinates": [112.5, 37.8]}, "Point"),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "LineString"),
        ({"type": "Polygon"}, "coordinates"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "至少需要 4 个点"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "未闭合"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, "x"], [0, 0]]]}, "[经度, 纬度]"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, True], [0, 0]]]}, "[经度, 纬度]"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]}, "经度 200"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 95], [0, 0]]]}, "纬度 95"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, "自相交"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]}, "边界无效"),
        (
            {
                "type": "Polygon",
                "coordinates": [
                    square(0, 0, 1, 1)["coordinates"][0],
                    square(2, 2, 3, 3)["coordinates"][0],
                ],
            },
            "内环",
        ),
        ({"type": "MultiPolygon", "coordinates": []}, "MultiPolygon"),
    ],
)
def test_bad_geojson_is_refused_saying_what_is_wrong(data, says):
    with pytest.raises(Invalid) as err:
        geometry.parse_boundary(data)
    assert err.value.code == "invalid_boundary" and err.value.status_code == 422
    assert says in err.value.zh, err.value.zh
    assert err.value.en.startswith("invalid boundary")


def test_containment_edges_and_distances():
    shape = geometry.parse_boundary(square(112.534, 37.885, 112.538, 37.888)).shape
    assert geometry.covers(shape, 112.536, 37.8865)
    assert geometry.covers(shape, 112.534, 37.8865)  # on the edge
    assert not geometry.covers(shape, 112.539, 37.8865)
    assert geometry.distance_m(shape, 112.536, 37.8865) == 0
    # 0.001° of longitude at 37.9° N is about 88 m.
    assert 85 < geometry.distance_m(shape, 112.539, 37.8865) < 91


def test_overlap_is_measured_in_square_metres():
    a = geometry.parse_boundary(square(112.534, 37.885, 112.538, 37.888)).shape
    touching = geometry.parse_boundary(square(112.538, 37.885, 112.542, 37.888)).shape
    half = geometry.parse_boundary(square(112.536, 37.885, 112.540, 37.888)).shape
    assert geometry.overlap_m2(a, touching) == 0
    assert geometry.overlap_m2(a, half) == pytest.approx(geometry.area_m2(a) / 2, rel=1e-3)
    assert geometry.area_m2(a) == pytest.approx(351.6 * 331.7, rel=0.01)


# --- the demo layout ------------------------------------------------------------------------


def test_demo_grids_tile_without_overlap_and_each_centre_is_its_own():
    grids = [a.code for a in demo.areas() if a.level == "grid"]
    assert len(grids) == 142
    shapes = {g: geometry.parse_boundary(jdemo.boundary(g)).shape for g in grids}
    for a, b in itertools.combinations(grids, 2):
        assert geometry.overlap_m2(shapes[a], shapes[b]) == 0, (a, b)
    for g in grids:
        lat, lon = jdemo.centre(g)
        assert [h for h in grids if geometry.covers(shapes[h], lon, lat)] == [g]
