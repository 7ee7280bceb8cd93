"""Spatial assignment (issue 3, deliverable 5): hand-made cases with known answers and the
synthetic demo city, checked against independent geopandas computations."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box
from typer.testing import CliRunner

from gridgis.assign import AssignError, assign_all
from gridgis.cli import app
from gridgis.crs import metric_crs
from gridgis.layers import FACILITY_CATEGORIES
from gridgis.standards import Settings
from gridgis.store import GeoPackageStore

C1 = "320102001001"  # community
G1, G2, G3 = C1 + "001", C1 + "002", C1 + "003"
X0, Y0, D = 118.80, 32.00, 0.001  # lon/lat of the south-west corner, cell size (≈ 95 × 111 m)
METRIC = metric_crs(X0, Y0)


def lonlat(geoms) -> gpd.GeoSeries:
    return gpd.GeoSeries(geoms, crs="EPSG:4326")


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    """Three cells side by side, west to east: G1 | G2 | G3 (shared edges exact)."""
    return gpd.GeoDataFrame(
        {"grid_code": [G1, G2, G3], "community_code": [C1] * 3, "kind": ["residential"] * 3},
        geometry=lonlat([box(X0 + i * D, Y0, X0 + (i + 1) * D, Y0 + D) for i in range(3)]),
    )


def split_building(frac_west: float, x_edge: float, y: float) -> shapely.Polygon:
    """A lon/lat box across the meridian x_edge with frac_west of its width west of it (over
    20 m the projection is affine, so the metric area share is frac_west too)."""
    w, h = 0.0002, 0.0001
    return box(x_edge - frac_west * w, y, x_edge + (1 - frac_west) * w, y + h)


@pytest.fixture(scope="module")
def layers() -> dict:
    buildings = gpd.GeoDataFrame(
        {"building_id": ["b_in", "b_6040", "b_955", "b_out"], "households": [30, 40, 50, 5]},
        geometry=lonlat(
            [
                box(X0 + 0.2 * D, Y0 + 0.2 * D, X0 + 0.4 * D, Y0 + 0.4 * D),
                split_building(0.6, X0 + D, Y0 + 0.5 * D),  # 60% in G1, 40% in G2
                split_building(0.05, X0 + 2 * D, Y0 + 0.5 * D),  # 5% in G2, 95% in G3
                box(X0 - 2 * D, Y0, X0 - 1.8 * D, Y0 + 0.2 * D),  # west of every grid
            ]
        ),
    )
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["f_edge", "f_corner", "f_g3", "f_poly", "f_g3b"],
            "category": ["retail", "kindergarten", "retail", "park", "retail"],
        },
        geometry=lonlat(
            [
                Point(X0 + D, Y0 + 0.5 * D),  # on the G1|G2 edge
                Point(X0 + 2 * D, Y0 + D),  # on the G2|G3 corner
                Point(X0 + 2.5 * D, Y0 + 0.5 * D),
                box(X0 + 1.7 * D, Y0 + 0.1 * D, X0 + 2.1 * D, Y0 + 0.3 * D),  # 3/4 in G2
                Point(X0 + 2.6 * D, Y0 + 0.5 * D),
            ]
        ),
    )
    addresses = gpd.GeoDataFrame(
        {"address_id": ["a1", "a2"], "text": ["示范路1号", "示范路2号"]},
        geometry=lonlat([Point(X0 + 0.5 * D, Y0 + 0.5 * D), Point(X0 - 5 * D, Y0)]),
    )
    institutions = gpd.GeoDataFrame(
        {"unit_id": ["u1"], "kind": ["school"]},
        geometry=lonlat([box(X0 + 2.1 * D, Y0 + 0.1 * D, X0 + 2.9 * D, Y0 + 0.9 * D)]),
    )
    staff = pd.DataFrame(
        {
            "staff_id": ["s1", "s2", "s3", "s4", "s5", "s6"],
            "name": ["张伟", "王芳", "李娜", "刘洋", "陈静", "赵磊"],
            "role": [
                "grid_head",
                "grid_worker",
                "grid_worker",
                "grid_head",
                "community_worker",
                "grid_worker",
            ],
            "community_code": [None, None, None, None, C1, None],
            "grid_code": [G1, G1, G2, C1 + "099", None, G1],
            "phone": ["13800000001"] * 6,
        }
    )
    communities = gpd.GeoDataFrame(
        {"community_code": [C1, "320102001002"], "name": ["一社区", "二社区"]},
        geometry=lonlat([box(X0, Y0, X0 + 3 * D, Y0 + D), box(X0 - 3 * D, Y0, X0, Y0 + D)]),
    )
    return {
        "buildings": buildings,
        "facilities": facilities,
        "addresses": addresses,
        "institutions": institutions,
        "staff": staff,
        "communities": communities,
    }


@pytest.fixture(scope="module")
def result(layers, grids):
    return assign_all(layers, grids, Settings())


def by_id(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.set_index(key)


def test_every_assigned_layer_gets_community_and_grid(result):
    for name in ("buildings", "facilities", "institutions", "addresses"):
        frame = getattr(result, name)
        assert {"community_code", "grid_code", "grid_share"} <= set(frame.columns), name
    assert result.crs == "EPSG:4549"


def test_point_on_shared_boundary_goes_to_exactly_one_grid(layers, grids, result):
    f = by_id(result.facilities, "facility_id")
    edge = layers["facilities"].geometry.iloc[0]
    touching = grids.grid_code[grids.intersects(edge)].tolist()
    assert touching == [G1, G2]  # the point really lies on both boundaries
    assert f.loc["f_edge", "grid_code"] == G1  # smallest code among boundary-only grids
    assert f.loc["f_corner", "grid_code"] == G2
    # the answer does not depend on the order of the grids
    flipped = assign_all(layers, grids.iloc[::-1], Settings())
    assert by_id(flipped.facilities, "facility_id")["grid_code"].equals(f["grid_code"])
    # every point is counted once: per-grid counts add up to the points in any grid
    assert result.grids["facilities_total"].sum() == f["grid_code"].notna().sum()


def test_polygons_go_by_largest_overlap_with_share_kept_below_90(layers, grids, result):
    b = by_id(result.buildings, "building_id")
    # independent share: geopandas overlay in the metric CRS
    inter = gpd.overlay(
        layers["buildings"].to_crs(METRIC), grids.to_crs(METRIC), how="intersection"
    )
    inter["share"] = inter.area / inter["building_id"].map(
        layers["buildings"].to_crs(METRIC).set_index("building_id").area
    )
    top = inter.sort_values("share", ascending=False).drop_duplicates("building_id")
    top = top.set_index("building_id")
    assert b.loc["b_6040", "grid_code"] == G1 == top.loc["b_6040", "grid_code"]
    assert b.loc["b_6040", "grid_share"] == pytest.approx(top.loc["b_6040", "share"], abs=1e-4)
    assert b.loc["b_6040", "grid_share"] == pytest.approx(0.6, abs=1e-4)
    assert b.loc["b_955", "grid_code"] == G3 and pd.isna(b.loc["b_955", "grid_share"])
    assert b.loc["b_in", "grid_code"] == G1 and pd.isna(b.loc["b_in", "grid_share"])
    f = by_id(result.facilities, "facility_id")
    assert f.loc["f_poly", "grid_code"] == G2
    assert f.loc["f_poly", "grid_share"] == pytest.approx(0.75, abs=1e-4)
    assert by_id(result.institutions, "unit_id").loc["u1", "grid_code"] == G3


def test_rows_in_no_grid_keep_their_community(result):
    b = by_id(result.buildings, "building_id")
    assert pd.isna(b.loc["b_out", "grid_code"])
    assert b.loc["b_out", "community_code"] == "320102001002"  # from the communities layer
    a = by_id(result.addresses, "address_id")
    assert a.loc["a1", "grid_code"] == G1 and a.loc["a1", "community_code"] == C1
    assert pd.isna(a.loc["a2", "grid_code"]) and pd.isna(a.loc["a2", "community_code"])
    assert any("buildings: 1 of 4 rows lie in no grid" in n for n in result.notes)


def test_unknown_staff_grid_is_rejected_with_its_row(result):
    staff = by_id(result.staff, "staff_id")
    assert "s4" not in staff.index and len(staff) == 5
    rej = result.assign_rejects
    assert len(rej) == 1
    row = rej.iloc[0]
    assert (row["layer"], row["row"], row["field"]) == ("staff", 4, "grid_code")
    assert row["staff_id"] == "s4" and row["name"] == "刘洋" and row["value"] == C1 + "099"
    assert "names no grid" in row["reason"]
    # staff with only a community keep it; staff with a grid get the grid's community
    assert staff.loc["s5", "community_code"] == C1 and pd.isna(staff.loc["s5", "grid_code"])
    assert staff.loc["s1", "community_code"] == C1


def test_grids_carry_facility_counts_and_staff(layers, grids, result):
    g = by_id(result.grids, "grid_code")
    for cat in FACILITY_CATEGORIES:
        assert g[f"facilities_{cat}"].dtype == np.int64
    # independent count: a spatial join on the points inside (not on) a grid
    f = result.facilities
    expected = f.groupby(["grid_code", "category"]).size()
    for (code, cat), n in expected.items():
        assert g.loc[code, f"facilities_{cat}"] == n
    assert g.loc[G3, "facilities_retail"] == 2 and g.loc[G2, "facilities_park"] == 1
    assert g["facilities_total"].sum() == 5
    assert g.loc[G1, "grid_head"] == "张伟"
    assert g.loc[G1, "grid_workers"] == "王芳、赵磊"  # ordered by staff_id
    assert g.loc[G2, "grid_workers"] == "李娜" and pd.isna(g.loc[G2, "grid_head"])
    assert list(g["staff_count"]) == [3, 1, 0]


def _rerun_layers(res, original: dict) -> dict:
    out = {k: v for k, v in res.layers().items() if k != "grids"}
    out["communities"] = original["communities"]
    return out


def assert_same(a, b) -> None:
    for name in (
        "buildings",
        "facilities",
        "institutions",
        "addresses",
        "staff",
        "assign_rejects",
        "grids",
    ):
        fa, fb = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(
            fa.reset_index(drop=True), fb.reset_index(drop=True), check_like=False, obj=name
        )


def test_idempotent_and_same_as_fresh_after_changes(layers, grids, result):
    again = assign_all(_rerun_layers(result, layers), result.grids, Settings())
    assert_same(again, result)

    # change the grids (G1 and G2 merged into one grid G1) and move a facility
    merged = grids[grids.grid_code != G2].copy()
    merged.loc[merged.grid_code == G1, "geometry"] = box(X0, Y0, X0 + 2 * D, Y0 + D)
    moved = layers["facilities"].copy()
    moved.loc[moved.facility_id == "f_g3", "geometry"] = Point(X0 + 0.5 * D, Y0 + 0.5 * D)
    changed = dict(layers, facilities=moved)
    fresh = assign_all(changed, merged, Settings())
    rerun_layers = _rerun_layers(result, layers)
    rerun_layers["facilities"] = rerun_layers["facilities"].copy()
    rerun_layers["facilities"].loc[rerun_layers["facilities"].facility_id == "f_g3", "geometry"] = (
        Point(X0 + 0.5 * D, Y0 + 0.5 * D)
    )
    rerun = assign_all(
        rerun_layers,
        result.grids[result.grids.grid_code != G2].assign(
            geometry=lambda d: d.geometry.where(d.grid_code != G1, box(X0, Y0, X0 + 2 * D, Y0 + D))
        ),
        Settings(),
    )
    assert_same(rerun, fresh)
    assert set(fresh.assign_rejects["staff_id"]) == {"s3", "s4"}  # s3 named G2

    # the grids come back: the rejected staff come back too (taken from assign_rejects)
    restored = assign_all(_rerun_layers(rerun, layers), grids, Settings())
    pd.testing.assert_frame_equal(
        restored.staff.sort_values("staff_id").reset_index(drop=True),
        assign_all(changed, grids, Settings()).staff.sort_values("staff_id").reset_index(drop=True),
    )


def test_bad_grids_are_refused(grids, layers):
    dup = pd.concat([grids, grids.iloc[[0]]], ignore_index=True)
    with pytest.raises(AssignError, match="duplicate grid_code " + G1):
        assign_all(layers, dup, Settings())
    with pytest.raises(AssignError, match="no field 'grid_code'"):
        assign_all(layers, grids.rename(columns={"grid_code": "code"}), Settings())


# -- the demo city -------------------------------------------------------------------------


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
                    "community_code": comm.community_code,
                    "geometry": comm.geometry.intersection(q),
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=communities.crs)


@pytest.fixture(scope="module")
def city():
    from gridgis.synth import make_city

    return make_city(households=10_000, seed=7)


def test_demo_city_against_independent_joins(city):
    layers = city.layers
    grids = quarter_grids(layers["communities"])
    res = assign_all(layers, grids, Settings())
    crs = res.crs
    # buildings: largest overlap by geopandas overlay
    b = layers["buildings"].to_crs(crs)
    inter = gpd.overlay(
        b[["building_id", "geometry"]],
        grids.to_crs(crs)[["grid_code", "geometry"]],
        how="intersection",
        keep_geom_type=True,
    )
    inter["area"] = inter.area
    top = (
        inter.sort_values(["area", "grid_code"], ascending=[False, True])
        .drop_duplicates("building_id")
        .set_index("building_id")["grid_code"]
    )
    got = res.buildings.set_index("building_id")["grid_code"]
    assert got.notna().all()  # the quarters tile the communities, which hold every building
    assert (got.loc[top.index] == top).all()
    assert res.buildings["households"].sum() == layers["buildings"]["households"].sum()
    # addresses: containment by sjoin (points strictly inside one grid)
    joined = gpd.sjoin(layers["addresses"], grids, predicate="within", how="left")
    joined = joined[~joined.index.duplicated(keep=False)]
    want = joined["grid_code"]
    have = res.addresses["grid_code"].loc[want.index]
    inside = want.notna()
    assert (have[inside] == want[inside]).all()
    # staff: the demo city names communities only, so nobody is rejected
    assert len(res.assign_rejects) == 0 and len(res.staff) == len(layers["staff"])
    # facility counts add up to the facilities in a grid
    assert res.grids["facilities_total"].sum() == res.facilities["grid_code"].notna().sum()


def test_cli_assign_writes_all_layers_atomically(tmp_path, city):
    ws = tmp_path / "ws.gpkg"
    store = GeoPackageStore(ws)
    store.write_many(dict(city.layers, grids=quarter_grids(city.layers["communities"])))
    runner = CliRunner()
    res = runner.invoke(app, ["assign", "--workspace", str(ws)])
    assert res.exit_code == 0, res.output
    b1 = store.read("buildings")
    assert b1["grid_code"].notna().all()
    g1 = store.read("grids")
    assert "facilities_kindergarten" in g1.columns and "grid_head" in g1.columns
    assert store.info("buildings").params["computed_crs"] == "EPSG:4549"
    res = runner.invoke(app, ["assign", "--workspace", str(ws)])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(store.read("buildings"), b1)
    pd.testing.assert_frame_equal(store.read("grids"), g1)


def test_cli_assign_without_grids_fails_clearly(tmp_path, city):
    ws = tmp_path / "nogrids.gpkg"
    GeoPackageStore(ws).write_many({"buildings": city.layers["buildings"]})
    res = CliRunner().invoke(app, ["assign", "--workspace", str(ws)])
    assert res.exit_code != 0
    assert "no layer 'grids'" in " ".join(res.output.split())


# -- real data: central Nanjing from OpenStreetMap (skipped when ../shared/data is absent) ---

NANJING = (
    Path(__file__).parents[2]
    / "shared"
    / "data"
    / "nanjing-xinjiekou-osm"
    / "nanjing_osm_bbox.osm.pbf"
)


@pytest.mark.shared
@pytest.mark.skipif(not NANJING.exists(), reason="needs ../shared/data (real OSM extract)")
def test_nanjing_osm_lattice_against_independent_joins():
    from gridgis.audit import audit_grids
    from gridgis.io.osm import read_osm
    from gridgis.layers import validate

    raw = read_osm(NANJING)
    layers = {
        name: validate(raw[name], name, source=str(NANJING)).data
        for name in ("buildings", "facilities", "institutions", "roads")
    }
    crs = metric_crs(118.78, 32.04)
    x0, y0, x1, y1 = layers["buildings"].to_crs(crs).total_bounds
    cells = [
        box(x, y, x + 250, y + 250)
        for y in np.arange(y0 - 1, y1 + 1, 250)
        for x in np.arange(x0 - 1, x1 + 1, 250)
    ]
    grids = gpd.GeoDataFrame(
        {"grid_code": [f"{C1}{i:03d}" for i in range(1, len(cells) + 1)]},
        geometry=gpd.GeoSeries(cells, crs=crs).to_crs("EPSG:4326"),
    )
    assert len(grids) < 1000
    res = assign_all(layers, grids, Settings())

    b = layers["buildings"].to_crs(crs)
    inter = gpd.overlay(
        b[["building_id", "geometry"]], grids.to_crs(crs), how="intersection", keep_geom_type=True
    )
    inter["a"] = inter.area
    top = (
        inter.sort_values(["a", "grid_code"], ascending=[False, True])
        .drop_duplicates("building_id")
        .set_index("building_id")["grid_code"]
    )
    got = res.buildings.set_index("building_id")["grid_code"]
    assert got.notna().all() and (got.loc[top.index] == top).all()
    split = res.buildings["grid_share"].notna()
    assert split.any() and (res.buildings.loc[split, "grid_share"] < 0.9).all()

    pts = layers["facilities"][layers["facilities"].geom_type == "Point"]
    joined = gpd.sjoin(pts, grids, predicate="within", how="left")
    joined = joined[~joined.index.duplicated(keep=False)]
    fac = res.facilities.loc[joined.index, "grid_code"]
    assert (fac == joined["grid_code"]).all()

    # the audit counts the same households per grid as the assignment
    audit = audit_grids(
        grids, {"buildings": layers["buildings"], "roads": layers["roads"]}, Settings()
    )
    per = (
        res.buildings.groupby("grid_code")["households"]
        .sum()
        .reindex(grids["grid_code"], fill_value=0)
    )
    assert audit.grids["households"].tolist() == per.astype(int).tolist()
    counts = audit.findings["check"].value_counts()
    assert counts.get("gap", 0) == 0 and counts.get("overlap", 0) == 0


def test_self_intersecting_building_is_still_assigned(grids):
    bowtie = shapely.Polygon(
        [
            (X0 + 0.1 * D, Y0 + 0.1 * D),
            (X0 + 0.3 * D, Y0 + 0.3 * D),
            (X0 + 0.3 * D, Y0 + 0.1 * D),
            (X0 + 0.1 * D, Y0 + 0.3 * D),
        ]
    )
    b = gpd.GeoDataFrame({"building_id": ["bow"], "households": [3]}, geometry=lonlat([bowtie]))
    assert not b.is_valid.iloc[0]
    res = assign_all({"buildings": b}, grids, Settings())
    assert res.buildings["grid_code"].iloc[0] == G1
