"""Issue 15, hand-made cases with worked answers: a park between two estates, a campus
with 2,400 households, an arterial through a 600-household block; and the typed flags,
community statistics and generated community codes."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, box

from gridgis.audit import audit_grids
from gridgis.delineate import FlagKind, community_stats, delineate, make_communities
from gridgis.delineate.flags import Flag, kinds_in, render
from gridgis.standards import Settings

METRIC = "EPSG:4549"
X0, Y0 = 392_000.0, 3_553_000.0
S = Settings()
C = "320199001001"


def _gdf(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC).to_crs("EPSG:4326")


def community(x1: float, y1: float, code: str = C) -> dict:
    return {
        "community_code": code,
        "name": "c",
        "street_code": code[:9],
        "geometry": box(X0, Y0, X0 + x1, Y0 + y1),
    }


def building(bid: str, x: float, y: float, households: int, w=20.0, h=12.0) -> dict:
    return {
        "building_id": bid,
        "households": households,
        "geometry": box(X0 + x - w / 2, Y0 + y - h / 2, X0 + x + w / 2, Y0 + y + h / 2),
    }


def road(rid: str, coords, cls="branch", name="") -> dict:
    line = LineString([(X0 + x, Y0 + y) for x, y in coords])
    return {"road_id": rid, "name": name, "road_class": cls, "geometry": line}


def metric(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return grids.to_crs(METRIC)


def test_park_between_two_estates_joins_a_grid():
    """West estate x 0–200 (3 × 100 households), park x 200–400 (no building), east estate
    x 400–600 (3 × 100). Branch roads at x 200 and 400. Worked answer: 600 households →
    2 grids of 300; the park (4 ha, under grid.open_ground_unit_min_m2 = 10 ha) belongs
    to one of them — no grid of 0 households, the two tile the community."""
    blds = [building(f"W{i}", 50 + 50 * i, 100, 100) for i in range(3)]
    blds += [building(f"E{i}", 450 + 50 * i, 100, 100) for i in range(3)]
    roads = [road("a", [(200, -50), (200, 250)]), road("b", [(400, -50), (400, 250)])]
    lay = {"communities": _gdf([community(600, 200)]), "buildings": _gdf(blds)}
    lay["roads"] = _gdf(roads)
    r = delineate(lay, S)
    g = metric(r.grids)
    assert sorted(g["households"]) == [300, 300]
    assert sorted(round(a) for a in g.area) == [40_000, 80_000]
    assert (g["kind"] == "residential").all() and (g["flags"] == "").all()
    union = shapely.union_all(g.geometry.to_numpy())
    assert union.symmetric_difference(box(X0, Y0, X0 + 600, Y0 + 200)).area < 1.0


def test_a_large_park_cut_off_by_a_unit_grid_becomes_open_ground():
    """A 24 ha park east of a school (a unit grid) and west of nothing: cut off from the
    housing, with no households, it becomes a unit grid 开放用地 (≥ 10 ha), not an empty
    residential grid."""
    blds = [building(f"H{i}", 50 + 60 * i, 100, 150) for i in range(2)]  # 300 households
    inst = {
        "name": "某中学",
        "kind": "school",
        "staff": 400,
        "geometry": box(X0 + 200, Y0, X0 + 400, Y0 + 200),
    }
    lay = {
        "communities": _gdf([community(1600, 200)]),  # park x 400–1600: 24 ha
        "buildings": _gdf(blds),
        "institutions": _gdf([inst]),
    }
    r = delineate(lay, S)
    g = metric(r.grids).set_index("name", drop=False)
    assert sorted(g["name"].fillna("")) == ["", "开放用地", "某中学"]
    assert g.loc["开放用地", "kind"] == "unit" and g.loc["开放用地", "households"] == 0
    assert g.loc["开放用地"].geometry.area == pytest.approx(1200 * 200, rel=1e-6)
    res = g[g["kind"] == "residential"]
    assert res["households"].tolist() == [300] and (res["flags"] == "").all()
    # with a green-space layer, the open ground is named after the park covering it
    park = {
        "name": "玄武湖公园",
        "kind": "park",
        "geometry": box(X0 + 400, Y0, X0 + 1500, Y0 + 200),
    }
    r2 = delineate(dict(lay, green_spaces=_gdf([park])), S)
    assert "玄武湖公园" in set(r2.grids["name"].dropna())


def test_campus_with_2400_households_is_divided_into_unit_grids_within_the_band():
    """A university (x 0–500, y 0–400: 20 ha) with 12 dormitories of 200 households, and
    housing east of it (x 500–800: 3 × 100). Worked answer: the campus is unit grids,
    k = round(2,400 / 375) = 6 of 2 dormitories = 400 households each, named 1/6–6/6;
    the housing is one residential grid of 300."""
    dorms = [
        building(f"D{i}{j}", 60 + 80 * i, 100 + 200 * j, 200, w=30, h=15)
        for i in range(6)
        for j in range(2)
    ]
    homes = [building(f"H{i}", 580 + 70 * i, 200, 100) for i in range(3)]
    uni = {"name": "某大学", "kind": "university", "geometry": box(X0, Y0, X0 + 500, Y0 + 400)}
    lay = {
        "communities": _gdf([community(800, 400)]),
        "buildings": _gdf(dorms + homes),
        "institutions": _gdf([uni]),
    }
    r = delineate(lay, S)
    g = metric(r.grids)
    unit = g[g["kind"] == "unit"].sort_values("name")
    assert unit["households"].tolist() == [400] * 6
    assert unit["name"].tolist() == [f"某大学 {i}/6" for i in range(1, 7)]
    assert (unit["flags"] == "").all()
    camp = shapely.union_all(unit.geometry.to_numpy())
    assert camp.symmetric_difference(box(X0, Y0, X0 + 500, Y0 + 400)).area < 1.0
    res = g[g["kind"] == "residential"]
    assert res["households"].tolist() == [300]
    # every dormitory whole in one grid
    dm = metric(lay["buildings"]).geometry.to_numpy()
    assert all(
        (shapely.area(shapely.intersection(d, g.geometry.to_numpy())) > 1).sum() == 1 for d in dm
    )
    # the audit agrees: no unit grid above the band
    assert len(audit_grids(r.grids, lay, S, checks=["households_out_of_range"]).findings) == 0
    st = community_stats(r.grids, S).iloc[0]
    assert (st["unit_grids"], st["unit_households"], st["residential_grids"]) == (6, 2400, 1)


def test_arterial_through_a_600_household_block():
    """An arterial (中山路) at x 200 through a block x 0–400: 450 households west (3 × 150 at
    x 50, 100, 150), 150 east (x 300). Split along the road, the east side (150) would be
    below 250: the band forbids it. Worked answer: 2 grids of 300 — {x 50, 100} and
    {x 150, x 300} — the second straddles the road: flagged crosses_arterial with the
    road's length through it (200 m less 15 m tolerance at each end = 170 m), the same
    number the audit reports."""
    blds = [building(f"W{i}", 50 + 50 * i, 100, 150) for i in range(3)]
    blds.append(building("E0", 300, 100, 150))
    lay = {
        "communities": _gdf([community(400, 200)]),
        "buildings": _gdf(blds),
        "roads": _gdf([road("M", [(200, -50), (200, 250)], "arterial", "中山路")]),
    }
    r = delineate(lay, S)
    g = r.grids
    assert sorted(g["households"]) == [300, 300]
    b = r.buildings.set_index("building_id")["grid_code"]
    assert b["W0"] == b["W1"] and b["W2"] == b["E0"] and b["W0"] != b["E0"]
    straddle = g.set_index("grid_code").loc[b["E0"]]
    assert kinds_in(straddle["flags"]) == [FlagKind.CROSSES_ARTERIAL]
    assert [f.kind for f in r.flags[b["E0"]]] == [FlagKind.CROSSES_ARTERIAL]
    assert straddle["crossings"] == 1
    cross = r.findings[r.findings["finding"] == "crosses"]
    assert cross["grid_code"].tolist() == [b["E0"]]
    assert cross["length_m"].tolist() == [pytest.approx(170.0, abs=0.5)]
    art = audit_grids(g, lay, S, checks=["arterial_crossing"]).findings
    assert art["grid_code"].tolist() == [b["E0"]]
    assert art["value"].tolist() == [pytest.approx(170.0, abs=0.5)]
    st = r.community_stats.iloc[0]
    assert st["flags_by_kind"] == "crosses_arterial=1" and st["share_in_band"] == 1.0


def test_flags_are_typed_and_rendered():
    f = [Flag(FlagKind.BELOW_MIN, "200 户 < 250"), Flag(FlagKind.MULTIPART, "x")]
    text = render(f)
    assert text == "below_min: 200 户 < 250; multipart: x"
    assert kinds_in(text) == [FlagKind.BELOW_MIN, FlagKind.MULTIPART]
    assert kinds_in("hand-written note; above_max_building: 楼栋") == [FlagKind.ABOVE_MAX_BUILDING]


def test_generated_communities_skip_reserved_codes_and_say_they_are_generated():
    """Two estates of 1,500 households split by an arterial: 2 communities. With the
    street's first two committee codes reserved (the national table holds them), the
    generated codes are the next free ones."""
    blds = [building(f"W{i}", 100 + 100 * i, 200, 300) for i in range(5)]
    blds += [building(f"E{i}", 1100 + 100 * i, 200, 300) for i in range(5)]
    lay = {
        "buildings": _gdf(blds),
        "roads": _gdf([road("M", [(1000, -500), (1000, 900)], "arterial", "学院路")]),
    }
    street = "110108010"
    comm, params = make_communities(
        lay, S, street_code=street, reserved_codes=[street + "001", street + "002"]
    )
    assert comm["community_code"].tolist() == [street + "003", street + "004"]
    assert comm["name"].tolist() == ["生成社区01", "生成社区02"]
    assert comm["households"].tolist() == [1500, 1500]
    assert params["street_code"] == street and params["reserved_codes_skipped"] == 2
    assert (comm["households"] > 0).all() and comm["synthetic"].all()
    with pytest.raises(ValueError, match="street_code or county_code"):
        make_communities(lay, S)


def test_community_stats_count_flags_by_kind():
    grids = pd.DataFrame(
        {
            "community_code": [C, C, C],
            "kind": ["residential", "residential", "unit"],
            "households": [300, 200, 800],
            "flags": ["", "below_min: x", "unit_above_max: y"],
        }
    )
    st = community_stats(grids, S).iloc[0]
    assert st["households"] == 1300 and st["grids"] == 3 and st["residential_grids"] == 2
    assert st["in_band"] == 1 and st["share_in_band"] == 0.5 and st["flagged"] == 2
    assert st["flags_by_kind"] == "below_min=1, unit_above_max=1"


def test_a_building_cut_by_a_community_boundary_is_reported():
    """Two communities meet at x 200; building X straddles the line. Grids never cut a
    building, but the given community boundary does: one building_cut finding names it
    and both communities."""
    c2 = "320199001002"
    comms = [community(200, 200), {**community(400, 200, c2)}]
    comms[1]["geometry"] = box(X0 + 200, Y0, X0 + 400, Y0 + 200)
    blds = [building("A", 100, 100, 300), building("B", 300, 100, 300), building("X", 200, 30, 5)]
    lay = {"communities": _gdf(comms), "buildings": _gdf(blds)}
    r = delineate(lay, S)
    cut = r.findings[r.findings["finding"] == "building_cut"]
    assert len(cut) == 1
    assert (
        "X" in cut["detail"].iloc[0] and C in cut["detail"].iloc[0] and c2 in cut["detail"].iloc[0]
    )


def test_a_street_name_three_provinces_share_is_told_apart_by_where_the_data_lie():
    divisions = pytest.importorskip("gridgis.divisions")
    if not divisions.available():
        pytest.skip("the national division table is not installed")
    from gridgis.delineate.streets import resolve_street
    from gridgis.errors import InputError

    code, reserved = resolve_street("学院路街道", None, (116.35, 40.0))  # Beijing, 海淀区
    assert code == "110108010" and reserved and all(c.startswith(code) for c in reserved)
    assert resolve_street("学院路街道", None, (126.6, 45.8))[0].startswith("23")  # Harbin
    with pytest.raises(InputError, match="ambiguous"):
        resolve_street("学院路街道")  # no county, no location: refused, naming them
    assert resolve_street("110108010")[0] == "110108010"
