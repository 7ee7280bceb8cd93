"""Audit of a city's existing grids (issue 3, deliverable 4): a hand-made grid file with one
deliberate fault of each kind, and the demo city cut into fake "city grids"."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, box
from typer.testing import CliRunner

from gridgis.audit import CHECKS, AuditError, audit_grids
from gridgis.cli import app
from gridgis.crs import metric_crs
from gridgis.standards import Settings
from gridgis.store import GeoPackageStore

METRIC = metric_crs(118.8, 32.0)  # EPSG:4549, the zone the audit will pick
OX, OY = 392_000.0, 3_540_000.0  # metric origin of the hand-made case (≈ 117.85°E, 32°N)
A, B = "320102001001", "320102001002"


def m(geom):
    """A shape given in metres from the origin, as the metric geometry."""
    return shapely.affinity.translate(geom, OX, OY)


def to_lonlat(geoms) -> gpd.GeoSeries:
    return gpd.GeoSeries([m(g) for g in geoms], crs=METRIC).to_crs("EPSG:4326")


# The city's grid file: community A = x 0–600, community B = x 600–1000 (y 0–200 m).
GRID_FILE = [  # (WGBM, shape, households inside, fault)
    (A + "001", box(0, 0, 100, 200), 300, None),
    (A + "002", box(100, 0, 200, 190), 300, "gap: 100 × 10 m strip above it"),
    (A + "003", box(200, 0, 310, 200), 300, "overlap: 10 × 200 m with A004"),
    (A + "004", box(300, 0, 400, 200), 300, None),
    (A + "005", box(400, 0, 450, 200).union(box(550, 0, 600, 200)), 300, "multipart"),
    (A + "000", box(450, 0, 550, 200), 300, "invalid code: sequence 000"),
    (B + "001", box(600, 0, 700, 200), 600, "600 households; arterial through it"),
    (B + "002", box(700, 0, 800, 200), 300, "duplicate code (with the last grid)"),
    (A + "007", box(800, 0, 900, 200), 300, "code prefix of community A, lies in B"),
    (B + "002", box(900, 0, 1010, 200), 300, "crosses community B by 10 × 200 m"),
]


@pytest.fixture(scope="module")
def case():
    grids = gpd.GeoDataFrame(
        {"WGBM": [c for c, *_ in GRID_FILE], "NAME": [f"网格{i}" for i in range(len(GRID_FILE))]},
        geometry=to_lonlat([g for _, g, *_ in GRID_FILE]),
    )
    communities = gpd.GeoDataFrame(
        {"community_code": [A, B], "name": ["甲社区", "乙社区"], "street_code": [A[:9]] * 2},
        geometry=to_lonlat([box(0, 0, 600, 200), box(600, 0, 1000, 200)]),
    )
    shapes, hh, ids = [], [], []
    for k, (_, g, households, _) in enumerate(GRID_FILE):
        x0, y0, x1, _ = g.bounds
        if k == 0:  # 20 of A001's 300 households sit in a building split 60/40 with A002
            shapes.append(box(88, 50, 108, 60))
            hh.append(20)
            households -= 20
        # the rest in two buildings well inside the grid (clear of gap and overlap)
        for j, n in enumerate((households // 2, households - households // 2)):
            bx = x0 + 12 + 18 * j
            shapes.append(box(bx, 120, bx + 15, 140))
            hh.append(n)
    shapes.append(box(1020, 50, 1040, 70))  # east of every grid
    hh.append(10)
    ids = [f"B{i:03d}" for i in range(len(shapes))]
    buildings = gpd.GeoDataFrame({"building_id": ids, "households": hh}, geometry=to_lonlat(shapes))
    roads = gpd.GeoDataFrame(
        {
            "road_id": ["R1", "R2", "R3", "R4"],
            "name": ["建设路", "南环路", "中山路", "小区路"],
            "road_class": ["arterial", "arterial", "arterial", "secondary"],
        },
        geometry=to_lonlat(
            [
                LineString([(650, -50), (650, 250)]),  # through B001
                LineString([(-50, 0), (1100, 0)]),  # along the south edge
                LineString([(100, -50), (100, 250)]),  # along A001|A002
                LineString([(50, -50), (50, 250)]),
            ]
        ),
    )  # not an avoided class
    layers = {"communities": communities, "buildings": buildings, "roads": roads}
    return grids, layers


@pytest.fixture(scope="module")
def result(case):
    grids, layers = case
    return audit_grids(grids, layers, Settings(), code_field="WGBM")


def findings(result, check):
    return result.findings[result.findings["check"] == check]


def test_each_fault_found_exactly_once(result):
    counts = result.findings["check"].value_counts().to_dict()
    assert counts == {
        "gap": 1,
        "overlap": 1,
        "multipart": 1,
        "invalid_code": 1,
        "households_out_of_range": 1,
        "duplicate_code": 1,
        "code_prefix_mismatch": 1,
        "crosses_community": 1,
        "building_no_grid": 1,
        "building_in_two_grids": 1,
        "arterial_crossing": 1,
    }
    assert set(result.summary()["status"]) == {"ran"}
    assert list(result.summary()["check"]) == list(CHECKS)


@pytest.mark.parametrize("name", list(CHECKS))
def test_each_check_runs_alone_with_the_same_findings(case, result, name):
    """A registered check run alone finds exactly what it finds in the full audit."""
    grids, layers = case
    alone = audit_grids(grids, layers, Settings(), code_field="WGBM", checks=[name])
    cols = ["check", "grid_code", "other_code", "feature_id", "detail"]
    assert alone.findings[cols].equals(findings(result, name)[cols].reset_index(drop=True))
    status = alone.summary().set_index("check")["status"]
    assert status[name] == "ran"
    assert (status.drop(name) == "skipped: not selected").all()


def test_checks_can_be_skipped_and_unknown_names_are_refused(case, result):
    grids, layers = case
    res = audit_grids(grids, layers, Settings(), code_field="WGBM", skip=["gap", "overlap"])
    assert not {"gap", "overlap"} & set(res.findings["check"])
    assert len(res.findings) == len(result.findings) - 2
    # the grid statistics do not depend on which checks ran
    assert res.grids["households"].tolist() == result.grids["households"].tolist()
    with pytest.raises(AuditError, match="unknown audit check.*no_such_check"):
        audit_grids(grids, layers, Settings(), code_field="WGBM", checks=["no_such_check"])


def test_gap_and_overlap_are_polygons_with_true_areas(case, result):
    grids, layers = case
    gm = grids.to_crs(METRIC)
    cm = layers["communities"].to_crs(METRIC)
    # independent: shapely on the metric shapes as built
    want_gap = m(box(0, 0, 600, 200)).difference(
        shapely.union_all([m(g) for _, g, *_ in GRID_FILE])
    )
    assert want_gap.area == pytest.approx(1000.0)
    gap = findings(result, "gap").iloc[0]
    assert gap["community_code"] == A and pd.isna(gap["grid_code"])
    assert gap["value"] == pytest.approx(want_gap.area, rel=1e-6)
    gap_m = gpd.GeoSeries([gap.geometry], crs="EPSG:4326").to_crs(METRIC).iloc[0]
    assert gap_m.symmetric_difference(want_gap).area < 1e-3
    assert cm.geometry.iloc[0].contains(gap_m.buffer(-0.01))

    ov = findings(result, "overlap").iloc[0]
    want_ov = gm.geometry.iloc[2].intersection(gm.geometry.iloc[3])
    assert (ov["grid_code"], ov["other_code"]) == (A + "003", A + "004")
    assert ov["value"] == pytest.approx(2000.0, rel=1e-6)
    assert ov["value"] == pytest.approx(want_ov.area, rel=1e-9)
    assert ov.geometry.geom_type == "Polygon"


def test_geometry_and_community_faults(result):
    mp = findings(result, "multipart").iloc[0]
    assert mp["grid_code"] == A + "005" and mp["value"] == 2
    cr = findings(result, "crosses_community").iloc[0]
    assert cr["grid_code"] == B + "002" and cr["grid_row"] == 10
    assert cr["value"] == pytest.approx(10 * 200, rel=1e-6)
    assert "outside its community " + B + " (by location)" in cr["detail"]
    pm = findings(result, "code_prefix_mismatch").iloc[0]
    assert pm["grid_code"] == A + "007" and pm["community_code"] == B


def test_code_faults_name_the_segment(result):
    bad = findings(result, "invalid_code").iloc[0]
    assert bad["grid_code"] == A + "000" and "sequence segment '000'" in bad["detail"]
    dup = findings(result, "duplicate_code").iloc[0]
    assert dup["grid_code"] == B + "002" and dup["value"] == 2
    assert "rows 8, 10" in dup["detail"]
    assert dup.geometry.geom_type == "MultiPolygon"


def test_households_and_buildings(case, result):
    out = findings(result, "households_out_of_range").iloc[0]
    assert out["grid_code"] == B + "001" and out["value"] == 600
    assert "> 500" in out["detail"]
    stats = result.grids
    assert stats["households"].tolist() == [hh for *_, hh, _ in GRID_FILE]
    # independent: every building's household count lands in exactly one grid
    assert stats["households"].sum() == case[1]["buildings"]["households"].sum() - 10
    none = findings(result, "building_no_grid").iloc[0]
    assert none["feature_id"] == case[1]["buildings"]["building_id"].iloc[-1]
    assert none["value"] == 10 and pd.isna(none["grid_code"])
    two = findings(result, "building_in_two_grids").iloc[0]
    assert (two["grid_code"], two["other_code"], two["feature_id"]) == (
        A + "001",
        A + "002",
        "B000",
    )
    assert two["value"] == pytest.approx(0.6, abs=1e-6)
    assert "60% in " + A + "001, 40% in " + A + "002" in two["detail"]


def test_arterial_crossing_only_where_it_runs_through(result):
    art = findings(result, "arterial_crossing").iloc[0]
    assert art["grid_code"] == B + "001" and art["other_code"] == "R1"
    # the part of R1 more than 15 m from B001's boundary: y 15–185
    assert art["value"] == pytest.approx(170.0, abs=0.01)


def test_findings_layer_shape(result):
    f = result.findings
    assert f.crs.to_epsg() == 4326
    assert set(f["severity"]) <= {"error", "warning"}
    assert f.geometry.notna().all()  # every finding here has a place on the map
    assert result.crs == "EPSG:4549"


def test_without_communities_enclosed_gaps_still_found():
    cells = [
        box(0, 0, 100, 100),
        box(100, 0, 200, 100),
        box(0, 100, 100, 200),
        box(100, 100, 200, 200).difference(box(120, 120, 150, 160)),
    ]  # 30 × 40 hole
    grids = gpd.GeoDataFrame(
        {"grid_code": [f"{A}{i:03d}" for i in range(1, 5)]}, geometry=to_lonlat(cells)
    )
    res = audit_grids(grids, {}, Settings())
    gaps = findings(res, "gap")
    assert len(gaps) == 1 and gaps["value"].iloc[0] == pytest.approx(1200.0, rel=1e-6)
    summary = res.summary().set_index("check")["status"]
    assert summary["crosses_community"].startswith("skipped")
    assert summary["households_out_of_range"] == "skipped: no buildings layer"
    # no communities: the code prefix is the community, so prefixes cannot mismatch
    assert len(findings(res, "code_prefix_mismatch")) == 0


def test_self_intersecting_grid_is_reported_and_repaired():
    bowtie = shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    grids = gpd.GeoDataFrame({"grid_code": [A + "001"]}, geometry=to_lonlat([bowtie]))
    res = audit_grids(grids, {}, Settings())
    bad = findings(res, "invalid_geometry")
    assert len(bad) == 1 and "Self-intersection" in bad["detail"].iloc[0]
    assert res.grids["area_m2"].iloc[0] == pytest.approx(5000.0, rel=1e-6)


def test_unusable_grid_layer_is_refused(case):
    grids, layers = case
    # the library names its parameter, never a CLI flag (the CLI adds its own)
    with pytest.raises(AuditError, match="no field 'grid_code'.*code_field parameter") as exc:
        audit_grids(grids, layers, Settings())
    assert exc.value.parameter == "code_field" and "--" not in str(exc.value)


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_audit_writes_findings_and_exits_zero(tmp_path, case):
    grids, layers = case
    ws = tmp_path / "city.gpkg"
    store = GeoPackageStore(ws)
    store.write_many(dict(layers, city_grids=grids))
    runner = CliRunner()
    res = runner.invoke(
        app, ["audit", "--workspace", str(ws), "--grids", "city_grids", "--code-field", "WGBM"]
    )
    assert res.exit_code == 0, res.output
    assert "households_out_of_range" in res.output
    found = store.read("grid_findings")
    assert len(found) == 11 and found["check"].value_counts().max() == 1
    info = store.info("grid_findings")
    assert info.params["computed_crs"] == "EPSG:4549" and info.params["code_field"] == "WGBM"
    gap = found[found["check"] == "gap"]
    assert gap.to_crs(METRIC).area.iloc[0] == pytest.approx(1000.0, rel=1e-6)

    res = runner.invoke(app, ["audit", "--workspace", str(ws), "--grids", "nope"])
    assert res.exit_code != 0 and "no layer 'nope'" in " ".join(res.output.split())
    res = runner.invoke(app, ["audit", "--workspace", str(ws), "--grids", "city_grids"])
    assert res.exit_code != 0 and "--code-field" in " ".join(res.output.split())


# -- the demo city ---------------------------------------------------------------------------


def quarter_grids(communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Fake "city grids": each community cut into 4 boxes at its bounds' centre."""
    rows = []
    for comm in communities.itertuples():
        x0, y0, x1, y1 = comm.geometry.bounds
        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
        quads = [box(x0, ym, xm, y1), box(xm, ym, x1, y1), box(x0, y0, xm, ym), box(xm, y0, x1, ym)]
        for i, q in enumerate(quads, 1):
            rows.append(
                {
                    "grid_code": f"{comm.community_code}{i:03d}",
                    "geometry": comm.geometry.intersection(q),
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=communities.crs)


@pytest.fixture(scope="module")
def city():
    from gridgis.synth import make_city

    return make_city(households=10_000, seed=7)


def test_demo_city_quarters(city):
    layers = city.layers
    grids = quarter_grids(layers["communities"])
    res = audit_grids(grids, layers, Settings())
    counts = res.findings["check"].value_counts()
    for check in (
        "gap",
        "overlap",
        "multipart",
        "crosses_community",
        "invalid_code",
        "duplicate_code",
        "code_prefix_mismatch",
        "building_no_grid",
        "arterial_crossing",
    ):
        assert counts.get(check, 0) == 0, check
    # independent households per grid: overlay, largest piece per building
    crs = res.crs
    inter = gpd.overlay(
        layers["buildings"].to_crs(crs), grids.to_crs(crs), how="intersection", keep_geom_type=True
    )
    inter["a"] = inter.area
    top = inter.sort_values(["a", "grid_code"], ascending=[False, True]).drop_duplicates(
        "building_id"
    )
    want = top.groupby("grid_code")["households"].sum().reindex(grids["grid_code"], fill_value=0)
    assert res.grids["households"].tolist() == want.astype(int).tolist()
    s = Settings().grid
    out = set(want[(want < s.min_households) | (want > s.max_households)].index)
    assert set(findings(res, "households_out_of_range")["grid_code"]) == out

    # perturb: shift one grid 20 m east (an overlap with its neighbour, a gap behind it)
    gm = grids.to_crs(crs)
    moved = gm.copy()
    moved.loc[0, "geometry"] = shapely.affinity.translate(gm.geometry.iloc[0], 20, 0)
    res2 = audit_grids(moved.to_crs("EPSG:4326"), layers, Settings())
    comm0 = layers["communities"].to_crs(crs).geometry.iloc[0]
    want_gap = comm0.difference(moved.union_all())
    gaps = findings(res2, "gap")
    assert gaps["value"].sum() == pytest.approx(want_gap.area, rel=1e-4)
    ov = findings(res2, "overlap")
    want_ov = moved.geometry.iloc[0].intersection(moved.geometry.iloc[1]).area
    assert len(ov) == 1 and ov["value"].iloc[0] == pytest.approx(want_ov, rel=1e-4)

    # perturb: merge two touching grids of different communities of one street across an
    # arterial into one grid
    comm_of = grids["grid_code"].str[:12]
    street_of = comm_of.str[:9]
    pair = None
    for i in range(len(gm)):
        for j in range(i + 1, len(gm)):
            if (
                street_of[i] == street_of[j]
                and comm_of[i] != comm_of[j]
                and gm.geometry.iloc[i].intersection(gm.geometry.iloc[j]).length > 100
            ):
                pair = (i, j)
                break
        if pair:
            break
    assert pair is not None
    i, j = pair
    merged = gm.drop(index=j).copy()
    merged.loc[i, "geometry"] = gm.geometry.iloc[i].union(gm.geometry.iloc[j])
    res3 = audit_grids(merged.to_crs("EPSG:4326"), layers, Settings())
    code = grids["grid_code"].iloc[i]
    cr = findings(res3, "crosses_community")
    assert cr["grid_code"].tolist() == [code]
    # the grid belongs to the community holding most of it; the smaller half is outside
    smaller = min(gm.geometry.iloc[i].area, gm.geometry.iloc[j].area)
    assert cr["value"].iloc[0] == pytest.approx(smaller, rel=1e-4)
    assert findings(res3, "arterial_crossing")["grid_code"].tolist() == [code]
    assert np.isclose(res3.grids["households"].sum(), res.grids["households"].sum())


def test_community_field_and_numeric_codes(case):
    grids, layers = case
    g = grids.copy()
    g["SQBM"] = [A] * 6 + [B] * 4  # the file's own community field
    g.loc[7, "SQBM"] = A  # B002 claims community A: prefix mismatch
    g["WGBM"] = g["WGBM"].astype("int64")  # codes read as numbers from a spreadsheet
    res = audit_grids(g, layers, Settings(), code_field="WGBM", community_field="SQBM")
    pm = findings(res, "code_prefix_mismatch").sort_values("grid_row")
    assert pm["grid_code"].tolist() == [B + "002", A + "007"]
    assert pm["grid_row"].tolist() == [8, 9]
    assert all("(by field SQBM)" in d for d in pm["detail"])
    # B002 lies wholly outside the community its field names
    cr = findings(res, "crosses_community").sort_values("grid_row")
    assert cr["grid_row"].tolist() == [8, 10]
    assert cr["value"].tolist() == pytest.approx([100 * 200, 10 * 200], rel=1e-6)
    assert "outside its community " + A + " (named in field SQBM)" in cr["detail"].iloc[0]
    assert len(findings(res, "duplicate_code")) == 1  # integer codes compared as text


def test_unit_grids_with_residents_are_checked_against_the_maximum_only(case):
    """Issue 15: a unit grid holding residents may not exceed the band (below is normal)."""
    grids, layers = case
    g = grids.copy()
    g["LX"] = (
        ["专属网格"] + ["责任网格"] * 5 + ["专属网格"] + ["责任网格"] * 3
    )  # A001 (300 households) and B001 (600 households) are unit grids
    res = audit_grids(g, layers, Settings(), code_field="WGBM", kind_field="LX")
    out = findings(res, "households_out_of_range")
    assert out["grid_code"].tolist() == [B + "001"]
    assert out["detail"].iloc[0].startswith("600 households > 500 (maximum) in a unit grid")
    pts = g.set_geometry(g.geometry.representative_point())
    with pytest.raises(AuditError, match="holds no polygons"):
        audit_grids(pts, layers, Settings(), code_field="WGBM")


# -- divided arterials: the median strip is not a crossing --------------------------------------
# A divided arterial is two one-way carriageways with a median strip between them; the strip
# belongs to the grid on one side, so the nearer carriageway runs inside that grid.

CARRIAGEWAYS = [("W", [(200, -50), (200, 350)]), ("E", [(236, 350), (236, -50)])]  # 36 m apart


def arterial_crossings(grid_boxes, lines, **rules) -> dict[str, float]:
    """Audit hand-made grids (metres from the origin) against arterials; code -> metres."""
    codes = [f"{A}{i:03d}" for i in range(1, len(grid_boxes) + 1)]
    grids = gpd.GeoDataFrame({"grid_code": codes}, geometry=to_lonlat(grid_boxes))
    roads = gpd.GeoDataFrame(
        {"road_id": [rid for rid, _ in lines], "name": "中山路", "road_class": "arterial"},
        geometry=to_lonlat([LineString(c) for _, c in lines]),
    )
    settings = Settings().override({f"grid.{k}": v for k, v in rules.items()})
    res = audit_grids(grids, {"roads": roads}, settings)
    art = findings(res, "arterial_crossing")
    return dict(zip(art["grid_code"], art["value"], strict=True))


def test_grid_holding_the_median_strip_does_not_cross_the_arterial():
    west_with_median = box(0, 0, 236, 300)  # boundary along the east carriageway
    east = box(236, 0, 450, 300)
    assert arterial_crossings([west_with_median, east], CARRIAGEWAYS) == {}
    # hand-drawn along the middle of the median: the west carriageway is 18 m inside
    assert arterial_crossings([box(0, 0, 218, 300), box(218, 0, 450, 300)], CARRIAGEWAYS) == {}
    # the rule is the median width: a narrower limit than the 36 m strip reports it
    # (y 15–285: the west carriageway more than 15 m from the grid's boundary)
    assert arterial_crossings([west_with_median], CARRIAGEWAYS, median_width_m=20.0) == {
        A + "001": pytest.approx(270.0)
    }


def test_real_crossings_are_still_found_in_full():
    # a grid straddling the divided arterial: both carriageways run through it
    assert arterial_crossings([box(0, 0, 450, 300)], CARRIAGEWAYS) == {
        A + "001": pytest.approx(2 * 270.0)
    }
    # one undivided arterial through the middle of a grid
    assert arterial_crossings([box(0, 0, 200, 300)], [("M", [(100, -50), (100, 350)])]) == {
        A + "001": pytest.approx(270.0)
    }
    # 36 m of the grid's land beyond an arterial, no second carriageway: a crossing
    assert arterial_crossings([box(0, 0, 236, 300)], [CARRIAGEWAYS[0]]) == {
        A + "001": pytest.approx(270.0)
    }
    # a carriageway through the grid's middle, the other one far off (60 m): crossing
    assert arterial_crossings(
        [box(0, 0, 236, 300)], [CARRIAGEWAYS[0], ("F", [(260, 350), (260, -50)])]
    ) == {A + "001": pytest.approx(270.0)}


def divided_arterial_community(east=(270, 320, 400)) -> dict[str, gpd.GeoDataFrame]:
    """Community x 0–450, y 0–200 m: the divided arterial (CARRIAGEWAYS), a branch road
    each side, 100 households at x 40, 90, 150 (west) and at ``east``."""
    xs = (40, 90, 150, *east)
    comm = gpd.GeoDataFrame(
        {"community_code": [A], "name": ["甲社区"], "street_code": [A[:9]]},
        geometry=to_lonlat([box(0, 0, 450, 200)]),
    )
    buildings = gpd.GeoDataFrame(
        {"building_id": [f"B{k}" for k in range(len(xs))], "households": 100, "use": "residential"},
        geometry=to_lonlat([box(x - 10, 94, x + 10, 106) for x in xs]),
    )
    lines = CARRIAGEWAYS + [("b1", [(100, -50), (100, 250)]), ("b2", [(350, -50), (350, 250)])]
    roads = gpd.GeoDataFrame(
        {
            "road_id": [r for r, _ in lines],
            "name": "中山路",
            "road_class": ["arterial", "arterial", "branch", "branch"],
        },
        geometry=to_lonlat([LineString(c) for _, c in lines]),
    )
    return {"communities": comm, "buildings": buildings, "roads": roads}


def test_delineated_grids_with_a_divided_arterial_have_no_crossing():
    from gridgis.delineate import delineate

    layers = divided_arterial_community()
    result = delineate(layers, Settings())
    grids = result.grids
    assert sorted(grids["households"]) == [300, 300]  # one grid each side of the arterial
    # delineation and the audit apply the same median rule: no crossing either way
    assert grids["crossings"].tolist() == [0, 0]
    assert "crosses" not in set(result.findings["finding"])
    res = audit_grids(grids, layers, Settings())
    assert len(findings(res, "arterial_crossing")) == 0
    # the median strip went to one grid: without the rule both count its near carriageway
    # (y 15–185: one crossing function serves both), in the same grid
    no_rule = Settings().override({"grid.median_width_m": 0.0})
    old = audit_grids(grids, layers, no_rule)
    assert findings(old, "arterial_crossing")["value"].tolist() == [pytest.approx(170.0)]
    old_d = delineate(layers, no_rule)
    assert old_d.grids["geometry"].geom_equals(grids["geometry"]).all()  # same partition
    crosses = old_d.findings[old_d.findings["finding"] == "crosses"]
    assert crosses["line"].tolist() == ["road:arterial 中山路"]
    assert crosses["length_m"].tolist() == [pytest.approx(170.0, abs=0.5)]
    assert crosses["grid_code"].tolist() == findings(old, "arterial_crossing")["grid_code"].tolist()


def test_delineation_still_reports_a_grid_straddling_a_divided_arterial():
    from gridgis.delineate import delineate

    layers = divided_arterial_community(east=(320,))  # 100 households east: one grid of 400
    result = delineate(layers, Settings())
    assert result.grids["households"].tolist() == [400]
    assert result.grids["crossings"].tolist() == [1]
    crosses = result.findings[result.findings["finding"] == "crosses"]
    assert crosses["line"].tolist() == ["road:arterial 中山路"]
    assert crosses["length_m"].tolist() == [pytest.approx(2 * 170.0, abs=0.5)]  # both ways
    art = findings(audit_grids(result.grids, layers, Settings()), "arterial_crossing")
    assert art["grid_code"].tolist() == crosses["grid_code"].tolist()
    assert art["value"].tolist() == [pytest.approx(2 * 170.0)]


NANJING = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "nanjing-xinjiekou-osm"
    / "nanjing_osm_bbox.osm.pbf"
)


@pytest.mark.shared
@pytest.mark.skipif(not NANJING.exists(), reason="needs ../shared/data (real OSM extract)")
def test_nanjing_divided_huju_road():
    """虎踞南路 on OpenStreetMap: two carriageways 28–31 m apart (the 水西门 tunnel tubes
    under the median are dropped on import). A grid holding one side and the median does
    not cross it."""
    from gridgis.io.osm import read_osm
    from gridgis.layers import validate

    roads = validate(read_osm(NANJING)["roads"], "roads", source=str(NANJING)).data
    rm = roads.to_crs(METRIC).set_index("road_id").geometry
    near, far = rm["osm_w158300787"], rm["osm_w159695206"]
    # the far carriageway is on the left of the near one; grids on either side of `near`
    left = shapely.buffer(near, 130, single_sided=True, cap_style="flat")
    right = shapely.buffer(near, -100, single_sided=True, cap_style="flat")
    assert left.intersection(far).length > 400  # left holds the median and beyond
    codes = [A + "001", A + "002", A + "003"]
    grids = gpd.GeoDataFrame(
        {"grid_code": codes},
        geometry=gpd.GeoSeries([left, right, left.union(right)], crs=METRIC).to_crs("EPSG:4326"),
    )
    art = findings(audit_grids(grids, {"roads": roads}, Settings()), "arterial_crossing")
    assert art["grid_code"].tolist() == [A + "003"]  # only the straddling grid
    assert set(art["other_code"].iloc[0].split(",")) >= {"osm_w158300787", "osm_w159695206"}
    assert art["value"].iloc[0] > near.length + 400
    old = audit_grids(grids, {"roads": roads}, Settings().override({"grid.median_width_m": 0.0}))
    assert sorted(findings(old, "arterial_crossing")["grid_code"]) == [A + "001", A + "003"]
