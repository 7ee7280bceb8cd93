"""Delineation: hand-made communities with known answers, property tests on random
communities, the demo city and the Nanjing OSM import (skipped without ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shapely.geometry import LineString, box

from gridgis.codes import validate_grid_code
from gridgis.delineate import GridPartitioner, delineate, make_communities, qualifies_as_unit
from gridgis.delineate.flags import ABOVE_BAND, BELOW_BAND, FlagKind, kinds_in
from gridgis.standards import Settings

METRIC = "EPSG:4549"  # CGCS2000 3-degree GK, central meridian 120E (Nanjing area)
X0, Y0 = 392_000.0, 3_553_000.0
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NANJING_PBF = DATA / "nanjing-xinjiekou-osm" / "nanjing_osm_bbox.osm.pbf"
S = Settings()


# -- helpers -------------------------------------------------------------------------------


def _gdf(rows: list[dict], crs: str = METRIC) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs("EPSG:4326")


def community(x0=0.0, y0=0.0, x1=400.0, y1=200.0, code="320199001001") -> dict:
    return {
        "community_code": code,
        "name": "c",
        "street_code": code[:9],
        "geometry": box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1),
    }


def building(bid: str, x: float, y: float, households: int, w=20.0, h=12.0) -> dict:
    return {
        "building_id": bid,
        "households": households,
        "use": "residential",
        "geometry": box(X0 + x - w / 2, Y0 + y - h / 2, X0 + x + w / 2, Y0 + y + h / 2),
    }


def road(rid: str, coords, cls="branch", name="") -> dict:
    return {
        "road_id": rid,
        "name": name,
        "road_class": cls,
        "geometry": LineString([(X0 + x, Y0 + y) for x, y in coords]),
    }


def layers(comms, buildings, roads=(), institutions=()) -> dict:
    out = {"communities": _gdf(list(comms)), "buildings": _gdf(list(buildings))}
    out["roads"] = _gdf(list(roads)) if roads else None
    if institutions:
        out["institutions"] = _gdf(list(institutions))
    return out


def check_invariants(result, lay, settings=S) -> None:
    """Every invariant of issue 3, or the flag that explains it."""
    g = result.grids
    assert g.crs.to_epsg() == 4326
    gm = g.to_crs(METRIC)
    cm = lay["communities"].to_crs(METRIC)
    assert set(gm.geom_type) == {"Polygon"}
    for cc, grp in gm.groupby("community_code"):
        comm = cm.loc[cm["community_code"] == cc].geometry.iloc[0]
        union = shapely.union_all(grp.geometry.to_numpy())
        assert abs(union.area - comm.area) / comm.area < 1e-4
        assert shapely.symmetric_difference(union, comm).area / comm.area < 1e-4
        assert grp.geometry.area.sum() - union.area < 1.0  # overlaps < 1 m²
        assert (
            shapely.area(shapely.intersection(grp.geometry.to_numpy(), comm))
            >= grp.geometry.area.to_numpy() - 1.0
        ).all()  # inside its community
    lo, hi = settings.grid.min_households, settings.grid.max_households
    res = g[g["kind"] == "residential"]
    out = (res["households"] < lo) | (res["households"] > hi)
    assert (res.loc[out, "flags"].str.len() > 0).all(), res.loc[out]
    for text in res.loc[res["households"] < lo, "flags"]:
        assert BELOW_BAND & set(kinds_in(text)), text
    for text in res.loc[res["households"] > hi, "flags"]:
        assert ABOVE_BAND & set(kinds_in(text)), text
    b = result.buildings
    assert b["grid_code"].notna().all()
    hh = pd.to_numeric(b["households"]).fillna(0)
    per_grid = hh.groupby(b["grid_code"].astype(str)).sum()
    assert (
        per_grid.reindex(g["grid_code"], fill_value=0).to_numpy().tolist()
        == g["households"].tolist()
    )
    for code, cc in zip(g["grid_code"], g["community_code"], strict=True):
        validate_grid_code(code, settings, community_code=cc)
    assert g["grid_code"].is_unique


# -- hand-made communities with known answers ----------------------------------------------


def test_two_blocks_of_300_give_exactly_two_grids():
    blds = [building(f"L{i}", 60 + 40 * i, 100, 100) for i in range(3)]
    blds += [building(f"R{i}", 260 + 40 * i, 100, 100) for i in range(3)]
    lay = layers([community()], blds, [road("r1", [(200, -50), (200, 250)])])
    r = delineate(lay)
    check_invariants(r, lay)
    g = r.grids.to_crs(METRIC)
    assert sorted(g["households"]) == [300, 300]
    assert (g["flags"] == "").all()
    # each grid is exactly one block, and the road is their border
    blocks = [box(X0, Y0, X0 + 200, Y0 + 200), box(X0 + 200, Y0, X0 + 400, Y0 + 200)]
    for geom in g.geometry:
        best = max(
            shapely.area(shapely.intersection(geom, bl))
            / shapely.area(shapely.union_all([geom, bl]))
            for bl in blocks
        )
        assert best > 0.9999
    # numbered west to east: the western block is 001
    west = g.geometry.centroid.x.idxmin()
    assert g.loc[west, "grid_code"].endswith("001")


def test_block_above_max_is_split_by_building_cells():
    # one block, 8 buildings of 100 households: 800 -> 2 grids of 400 (k = round(800/375))
    blds = [building(f"B{i}", 50 + 100 * (i % 4), 50 + 100 * (i // 4), 100) for i in range(8)]
    lay = layers([community()], blds)
    r = delineate(lay)
    check_invariants(r, lay)
    assert sorted(r.grids["households"]) == [400, 400]
    # no building is cut: every building lies (almost) wholly in its own grid
    gm = r.grids.to_crs(METRIC).set_index("grid_code")
    bm = r.buildings.to_crs(METRIC)
    for geom, code in zip(bm.geometry, bm["grid_code"], strict=True):
        assert shapely.area(shapely.intersection(geom, gm.geometry[code])) > 0.97 * geom.area


def test_community_below_min_is_one_flagged_grid():
    lay = layers(
        [community()],
        [building("A", 100, 100, 120), building("B", 300, 100, 80)],
        [road("r1", [(200, -50), (200, 250)])],
    )
    r = delineate(lay)
    check_invariants(r, lay)
    assert len(r.grids) == 1
    assert r.grids["households"].iloc[0] == 200
    assert r.grids["flags"].iloc[0] == "community_too_small: 全区合计 200 户 < 250"
    code = r.grids["grid_code"].iloc[0]
    assert [f.kind for f in r.flags[code]] == [FlagKind.COMMUNITY_TOO_SMALL]


def test_building_above_max_is_flagged_by_name():
    blds = [
        building("TOWER", 100, 100, 620),
        building("S1", 300, 60, 150),
        building("S2", 300, 140, 150),
    ]
    lay = layers([community()], blds, [road("r1", [(200, -50), (200, 250)])])
    r = delineate(lay)
    check_invariants(r, lay)
    g = r.grids.set_index("households")
    assert g.loc[620, "flags"] == "above_max_building: 楼栋 TOWER 单栋 620 户 > 500（楼栋不拆分）"
    assert g.loc[300, "flags"] == ""


def test_arterial_is_a_border_and_a_crossing_is_reported_when_unavoidable():
    blds = [building(f"L{i}", 60 + 40 * i, 100, 100) for i in range(3)]
    blds += [building(f"R{i}", 260 + 40 * i, 100, 100) for i in range(3)]
    # a branch road and an arterial: the arterial must be the border
    rds = [
        road("a", [(200, -50), (200, 250)], "arterial", "中山路"),
        road("b", [(100, -50), (100, 250)], "branch"),
    ]
    lay = layers([community()], blds, rds)
    r = delineate(lay)
    check_invariants(r, lay)
    assert sorted(r.grids["households"]) == [300, 300]
    assert (r.grids["crossings"] == 0).all() and len(r.findings) == 0
    # only 100 households east of the arterial: merged across it, crossing reported
    blds2 = [building(f"L{i}", 60 + 40 * i, 100, 100) for i in range(3)] + [
        building("R0", 300, 100, 100)
    ]
    lay2 = layers([community()], blds2, rds)
    r2 = delineate(lay2)
    check_invariants(r2, lay2)
    assert r2.grids["households"].tolist() == [400]
    assert r2.grids["crossings"].tolist() == [1]
    f = r2.findings
    assert f["finding"].tolist() == ["crosses"] and f["line"].iloc[0] == "road:arterial 中山路"
    # the audit's rule: 200 m of road, less grid.audit_road_tolerance_m (15 m) at each end
    assert f["length_m"].iloc[0] == pytest.approx(170.0, abs=0.5)
    assert r2.grids["flags"].iloc[0].startswith("crosses_arterial: ")
    # a crossing is reported only above settings.grid.min_crossing_m (the audit's rule)
    r3 = delineate(lay2, Settings().override({"grid.min_crossing_m": 250.0}))
    assert r3.grids["households"].tolist() == [400]
    assert r3.grids["crossings"].tolist() == [0] and "crosses" not in set(r3.findings["finding"])


def test_alignment_boundaries_are_followed():
    # 6 buildings in one block: without alignment the split is free; with a police area
    # covering the north half, the grids must be the north and south halves.
    blds = [building(f"N{i}", 60 + 140 * i, 150, 100) for i in range(3)]
    blds += [building(f"S{i}", 60 + 140 * i, 50, 100) for i in range(3)]
    lay = layers([community()], blds)
    police = _gdf(
        [
            {"name": "p1", "geometry": box(X0 - 10, Y0 + 100, X0 + 410, Y0 + 210)},
            {"name": "p2", "geometry": box(X0 - 10, Y0 - 10, X0 + 410, Y0 + 100)},
        ]
    )
    r = delineate(lay, alignment={"police_areas": police})
    check_invariants(r, lay)
    g = r.grids.to_crs(METRIC)
    assert sorted(g["households"]) == [300, 300]
    halves = [box(X0, Y0 + 100, X0 + 400, Y0 + 200), box(X0, Y0, X0 + 400, Y0 + 100)]
    for geom in g.geometry:
        assert max(shapely.area(shapely.intersection(geom, h)) for h in halves) > 0.999 * geom.area
    assert (g["crossings"] == 0).all()
    assert r.params["alignment_layers"] == ["police_areas"]


def test_large_institution_becomes_unit_grid_small_one_joins():
    blds = [building(f"B{i}", 40 + 45 * i, 170, 100) for i in range(8)]
    school = {
        "unit_id": "U1",
        "name": "第一中学",
        "kind": "school",
        "staff": 1500,
        "floor_area_m2": 25000.0,
        "geometry": box(X0 + 10, Y0 + 10, X0 + 190, Y0 + 140),
    }  # 2.34 ha
    kiosk = {
        "unit_id": "U2",
        "name": "小所",
        "kind": "government",
        "staff": 20,
        "floor_area_m2": 500.0,
        "geometry": box(X0 + 250, Y0 + 20, X0 + 300, Y0 + 60),
    }
    lay = layers([community()], blds, institutions=[school, kiosk])
    assert qualifies_as_unit(lay["institutions"].to_crs(METRIC)).tolist() == [True, False]
    r = delineate(lay)
    check_invariants(r, lay)
    g = r.grids
    unit = g[g["kind"] == "unit"]
    assert len(unit) == 1 and unit["name"].iloc[0] == "第一中学"
    um = unit.to_crs(METRIC).geometry.iloc[0]
    assert (
        shapely.area(shapely.intersection(um, school["geometry"])) > 0.999 * school["geometry"].area
    )
    assert sorted(g.loc[g["kind"] == "residential", "households"]) == [400, 400]


def test_partitioner_known_answer_on_a_path_graph():
    # 6 units in a row of 100 households: 600 -> 2 regions of 300 (only contiguous answer)
    n = 6
    part = GridPartitioner(
        np.full(n, 100),
        np.arange(n) * 10.0,
        np.zeros(n),
        np.array([[i, i + 1] for i in range(n - 1)]),
        np.ones(n - 1),
        np.zeros(n - 1, bool),
        250,
        500,
        375,
    )
    labels = part.solve()
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    # 11 units of 100 -> 3 regions (k = round(1100/375)), all within bounds, contiguous
    n = 11
    part = GridPartitioner(
        np.full(n, 100),
        np.arange(n) * 10.0,
        np.zeros(n),
        np.array([[i, i + 1] for i in range(n - 1)]),
        np.ones(n - 1),
        np.zeros(n - 1, bool),
        250,
        500,
        375,
    )
    labels = part.solve()
    assert len(set(labels)) == 3
    assert all(np.all(np.diff(np.flatnonzero(labels == r)) == 1) for r in set(labels))
    assert sorted(part.region_households_.values()) == [300, 400, 400]


# -- property tests on random communities --------------------------------------------------


@st.composite
def random_community(draw):
    w = draw(st.floats(150, 600))
    h = draw(st.floats(150, 600))
    nx = draw(st.integers(0, 3))
    ny = draw(st.integers(0, 3))
    xs = sorted(draw(st.lists(st.floats(0.1, 0.9), min_size=nx, max_size=nx)))
    ys = sorted(draw(st.lists(st.floats(0.1, 0.9), min_size=ny, max_size=ny)))
    classes = ["arterial", "secondary", "branch", "path"]
    rds = [
        road(f"v{i}", [(x * w, -20), (x * w, h + 20)], draw(st.sampled_from(classes)))
        for i, x in enumerate(xs)
    ]
    rds += [
        road(f"h{i}", [(-20, y * h), (w + 20, y * h)], draw(st.sampled_from(classes)))
        for i, y in enumerate(ys)
    ]
    comm = community(0, 0, w, h)
    hole = None
    if draw(st.booleans()):  # a hole or a notch (a lake, another community's enclave)
        hx, hy = draw(st.floats(0.0, 0.6)), draw(st.floats(0.0, 0.6))
        hole = box(X0 + hx * w, Y0 + hy * h, X0 + (hx + 0.3) * w, Y0 + (hy + 0.3) * h)
        comm["geometry"] = comm["geometry"].difference(hole)
    nb = draw(st.integers(1, 30))
    blds = []
    for i in range(nb):
        x = draw(st.floats(0.03, 0.97)) * w
        y = draw(st.floats(0.03, 0.97)) * h
        b = building(f"b{i}", x, y, draw(st.integers(0, 260)), w=6.0, h=4.0)
        if hole is None or not hole.buffer(5).intersects(b["geometry"]):
            blds.append(b)
    if not blds:
        p = comm["geometry"].representative_point()
        blds.append(building("b0", p.x - X0, p.y - Y0, 10, w=0.5, h=0.5))
    return layers([comm], blds, rds)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_community())
def test_random_communities_hold_every_invariant_or_flag_it(lay):
    r = delineate(lay)
    check_invariants(r, lay)
    # feasibility: where nothing forbids it, every residential grid is in range
    hh = pd.to_numeric(lay["buildings"]["households"]).fillna(0)
    flagged = r.grids["flags"].str.len() > 0
    if hh.sum() < 250:
        assert len(r.grids) == 1 and flagged.all()
    if (~flagged).all():
        assert r.grids["households"].between(250, 500).all()


# -- the demo city ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_city():
    from gridgis.synth import make_city

    city = make_city(households=10_000, seed=7)
    return city, delineate(city.layers)


def test_demo_city_grids(demo_city):
    city, r = demo_city
    check_invariants(r, city.layers)
    g = r.grids
    res = g[g["kind"] == "residential"]
    assert res["households"].between(250, 500).all()
    assert (g["flags"] == "").all()
    assert g["polsby_popper"].mean() >= 0.45
    assert (g["kind"] == "unit").sum() >= 1
    assert int(res["households"].sum()) == int(
        pd.to_numeric(city.layers["buildings"]["households"]).sum()
    ) - int(g.loc[g["kind"] == "unit", "households"].sum())
    # balance: residential grids cluster around the target, not at the bounds
    assert abs(res["households"].mean() - 375) < 60
    # Polsby-Popper recomputed independently from the stored geometry
    gm = g.to_crs(METRIC)
    pp = 4 * np.pi * gm.geometry.area / gm.geometry.length**2
    assert np.allclose(pp, g["polsby_popper"], atol=1e-3)


def test_demo_city_rerun_keeps_every_code(demo_city):
    city, r = demo_city
    again = delineate(city.layers, previous=r.grids, registry=r.registry)
    assert again.grids["grid_code"].tolist() == r.grids["grid_code"].tolist()
    assert (again.registry["status"] == "active").all()
    assert len(again.registry) == len(r.grids)


def test_make_communities_from_the_whole_area(demo_city):
    city, _ = demo_city
    lay = {k: v for k, v in city.layers.items() if k not in ("communities", "streets")}
    with pytest.raises(ValueError, match="county"):
        make_communities(lay, S)  # no streets: no default county can know the place
    comm, params = make_communities(lay, S, county_code="320102")
    assert params["communities_made_from"].startswith("study area")
    assert comm["synthetic"].all()
    assert comm["community_code"].str.startswith("320102001").all()
    hh = comm["households"]
    assert hh.sum() == int(pd.to_numeric(lay["buildings"]["households"]).sum())
    assert (hh.between(1000, 3000) | (comm["flags"] != "")).all()
    lay["communities"] = comm
    r = delineate(lay)
    check_invariants(r, lay)


# -- real data: Nanjing OSM ---------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.skipif(not NANJING_PBF.exists(), reason="needs ../shared/data (Nanjing OSM)")
def test_nanjing_osm_end_to_end(tmp_path):
    from typer.testing import CliRunner

    from gridgis.cli import app
    from gridgis.io import import_into
    from gridgis.store import open_store

    ws = tmp_path / "nj.gpkg"
    store = open_store(ws)
    import_into(store, [NANJING_PBF])
    assert not store.has("communities")
    # no streets and no county: the codes would name no real place — a clear error
    run = CliRunner().invoke(app, ["delineate", "--workspace", str(ws), "--communities"])
    assert run.exit_code == 2 and "county" in run.output, run.output
    assert not store.has("grids")
    # 新街口 lies in 玄武区 (320102)
    run = CliRunner().invoke(
        app, ["delineate", "--workspace", str(ws), "--communities", "--county", "320102"]
    )
    assert run.exit_code == 0, run.output
    comm = store.read("communities")
    assert comm["community_code"].str.startswith("320102001").all()
    assert len(comm) >= 3 and comm["synthetic"].astype(bool).all()
    assert (comm["households"] > 0).all()  # issue 15: no community of 0 households
    stats = store.read("community_stats")  # per-community statistics, also printed
    assert sorted(stats["community_code"]) == sorted(comm["community_code"])
    assert "社区统计" in run.output
    lay = {"communities": comm}
    b = store.read("buildings")

    class R:  # the stored outcome, checked like a fresh result
        grids = store.read("grids")
        buildings = b

    # the check uses households per grid from the buildings' (assigned) grid codes
    check_invariants(R, lay)
    res = R.grids[R.grids["kind"] == "residential"]
    ok = res["households"].between(250, 500)
    assert ok.mean() > 0.9
    assert res.loc[~ok, "flags"].str.len().gt(0).all()
    # re-running keeps the codes
    before = R.grids["grid_code"].tolist()
    run = CliRunner().invoke(app, ["delineate", "--workspace", str(ws)])
    assert run.exit_code == 0, run.output
    assert store.read("grids")["grid_code"].tolist() == before


# -- the command ---------------------------------------------------------------------------


def test_cli_delineate_writes_grids_registry_and_keeps_codes(tmp_path):
    from typer.testing import CliRunner

    from gridgis.cli import app
    from gridgis.store import open_store

    blds = [building(f"L{i}", 60 + 40 * i, 100, 100) for i in range(3)]
    blds += [building(f"R{i}", 260 + 40 * i, 100, 100) for i in range(3)]
    lay = layers([community()], blds, [road("r1", [(200, -50), (200, 250)])])
    ws = tmp_path / "ws.gpkg"
    store = open_store(ws)
    store.write_many({"buildings": lay["buildings"], "roads": lay["roads"]})
    runner = CliRunner()
    # no communities and no --communities: a clear error, nothing written
    run = runner.invoke(app, ["delineate", "--workspace", str(ws)])
    assert run.exit_code == 2 and "--communities" in run.output
    assert not store.has("grids")
    store.write("communities", lay["communities"])
    run = runner.invoke(app, ["delineate", "--workspace", str(ws)])
    assert run.exit_code == 0, run.output
    g = store.read("grids")
    assert sorted(g["households"]) == [300, 300]
    assert store.read("buildings")["grid_code"].notna().all()
    reg = store.read("code_registry")
    assert sorted(reg["grid_code"]) == sorted(g["grid_code"]) and (reg["status"] == "active").all()
    assert store.info("grids").params["computed_crs"] == "EPSG:4549"
    # a tighter band makes 3 grids: two keep their codes (IoU >= 0.5), one new above them
    run = runner.invoke(
        app,
        [
            "delineate",
            "--workspace",
            str(ws),
            "--set",
            "grid.max_households=250",
            "--set",
            "grid.min_households=100",
            "--set",
            "grid.target_households=200",
        ],
    )
    assert run.exit_code == 0, run.output
    g2 = store.read("grids")
    assert len(g2) == 3 and g2["households"].between(100, 250).all()
    new = set(g2["grid_code"]) - set(g["grid_code"])
    assert len(new) == 1 and int(next(iter(new))[12:]) == 3
    # a wide band makes one grid overlapping each old one by IoU ~1/3: all three codes are
    # retired and the new grid takes 004 (a retired number never comes back)
    run = runner.invoke(
        app,
        [
            "delineate",
            "--workspace",
            str(ws),
            "--set",
            "grid.max_households=700",
            "--set",
            "grid.min_households=500",
            "--set",
            "grid.target_households=600",
        ],
    )
    assert run.exit_code == 0, run.output
    g3 = store.read("grids")
    reg3 = store.read("code_registry").set_index("grid_code")
    assert len(g3) == 1 and g3["households"].tolist() == [600]
    retired = set(reg3.index[reg3["status"] == "retired"])
    assert len(retired) == 3 and g3["grid_code"].str[12:].tolist() == ["004"]
    assert reg3.loc[list(retired), "retired_at"].notna().all()


def test_make_communities_inside_each_street(demo_city):
    city, _ = demo_city
    lay = {k: v for k, v in city.layers.items() if k != "communities"}
    comm, params = make_communities(lay, S)
    assert params["communities_made_from"] == "streets"
    streets = city.layers["streets"].to_crs(METRIC).set_index("street_code")
    cm = comm.to_crs(METRIC)
    for code, sc, geom in zip(cm["community_code"], cm["street_code"], cm.geometry, strict=True):
        assert code.startswith(sc)
        assert shapely.area(shapely.difference(geom, streets.geometry[sc])) < 1.0
    for sc, grp in cm.groupby("street_code"):
        union = shapely.union_all(grp.geometry.to_numpy())
        assert abs(union.area - streets.geometry[sc].area) / union.area < 1e-4
