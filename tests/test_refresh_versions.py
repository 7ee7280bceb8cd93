"""Grids over time: hand edits as QGIS makes them (merge, split, move a vertex, delete),
`refresh` recomputing every figure (checked against an independent recount), dated
versions and the as-of lookup — on both stores."""

from __future__ import annotations

import os
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.ops import split as split_polygon

from gridgis import workflows
from gridgis.crs import metric_crs_for
from gridgis.standards import DEFAULT
from gridgis.store import GeoPackageStore, open_store

DELINEATED = "2025-01-01"
EDITED = "2025-03-01"
BEFORE_EDIT = "2025-02-15"
AFTER_EDIT = "2025-03-02"


def fresh_pg_url() -> str:
    from gridgis.store.pgtemp import PostgresUnavailable, find_bindir, fresh_workspace_url

    if not os.environ.get("GRIDGIS_TEST_DATABASE_URL"):
        try:
            find_bindir()
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL not installed: {exc}")
    return fresh_workspace_url()


@pytest.fixture(params=["gpkg", "postgis"])
def delineated(request, demo_city_gpkg, tmp_path):
    """The demo city delineated on DELINEATED, in a GeoPackage or a PostGIS schema."""
    if request.param == "gpkg":
        shutil.copy(demo_city_gpkg, tmp_path / "ws.gpkg")
        store = open_store(tmp_path / "ws.gpkg")
    else:
        src = GeoPackageStore(demo_city_gpkg)
        store = open_store(fresh_pg_url())
        store.write_many({n: src.read(n) for n in src.layers()})
        src.close()
    workflows.delineate(store, DEFAULT, effective=DELINEATED, reason="first plan")
    yield store
    store.close()


# -- edits as a planner makes them in QGIS --------------------------------------------------
def _neighbours(g: gpd.GeoDataFrame, crs) -> list[tuple[int, int]]:
    m = g.geometry.to_crs(crs).to_numpy()
    pairs = []
    for i in range(len(g)):
        for j in range(i + 1, len(g)):
            if g["community_code"].iloc[i] != g["community_code"].iloc[j]:
                continue
            shared = shapely.length(shapely.intersection(m[i].boundary, m[j].boundary))
            if shared > 50:
                pairs.append((i, j))
    return pairs


def merge(g: gpd.GeoDataFrame, keep: int, drop: int) -> gpd.GeoDataFrame:
    """QGIS "Merge selected features": one feature, the attributes of the one chosen."""
    out = g.copy()
    geom = shapely.union(out.geometry.iloc[keep], out.geometry.iloc[drop])
    out.loc[out.index[keep], "geometry"] = shapely.normalize(shapely.make_valid(geom))
    return out.drop(index=out.index[drop]).reset_index(drop=True)


def split(g: gpd.GeoDataFrame, row: int, share: float = 0.3) -> gpd.GeoDataFrame:
    """QGIS "Split features" along a north-south line: two features, same attributes."""
    poly = g.geometry.iloc[row]
    minx, miny, maxx, maxy = poly.bounds
    x = minx + share * (maxx - minx)
    parts = list(split_polygon(poly, shapely.LineString([(x, miny - 1), (x, maxy + 1)])).geoms)
    assert len(parts) >= 2
    parts.sort(key=lambda p: -p.area)
    big, small = parts[0], shapely.union_all(parts[1:])
    if small.geom_type != "Polygon":  # keep the edit simple: one piece each side
        return g
    extra = g.iloc[[row]].copy()
    extra["geometry"] = [small]
    out = g.copy()
    out.loc[out.index[row], "geometry"] = big
    return gpd.GeoDataFrame(pd.concat([out, extra], ignore_index=True), crs=g.crs)


def move_shared_vertex(g: gpd.GeoDataFrame, row: int, metres: float = 3.0):
    """QGIS vertex tool with topological editing: a vertex shared by two grids moves in
    both. Returns the edited grids and the two rows changed."""
    coords = [set(map(tuple, shapely.get_coordinates(p))) for p in g.geometry]
    deg = metres / 111_000
    for v in sorted(coords[row]):
        owners = [i for i, c in enumerate(coords) if v in c]
        if len(owners) != 2:
            continue
        new = (v[0] + deg, v[1] + deg / 2)
        moved = [
            shapely.transform(g.geometry.iloc[i], lambda a, v=v, new=new: _swap(a, v, new))
            for i in owners
        ]
        if all(p.is_valid for p in moved):
            out = g.copy()
            for i, p in zip(owners, moved, strict=True):
                out.loc[out.index[i], "geometry"] = p
            return out, owners
    raise AssertionError("no movable shared vertex")


def _swap(a: np.ndarray, old, new) -> np.ndarray:
    a = a.copy()
    hit = (a[:, 0] == old[0]) & (a[:, 1] == old[1])
    a[hit] = new
    return a


# -- the independent recount ---------------------------------------------------------------
def independent_figures(store, settings=DEFAULT) -> pd.DataFrame:
    """Every grid figure recomputed from geometry alone (no gridgis analysis): buildings
    by largest overlap (ties and misses ignored), facilities by containment, area and
    compactness in the data's metric CRS, staff by their grid_code."""
    g = store.read("grids")
    b = store.read("buildings")
    f = store.read("facilities")
    staff = store.read("staff")
    crs = metric_crs_for(g)
    gm, bm = g.to_crs(crs), b.to_crs(crs)
    inter = gpd.overlay(
        bm[["building_id", "households", "geometry"]],
        gm[["grid_code", "geometry"]],
        how="intersection",
        keep_geom_type=True,
    )
    inter["a"] = inter.area
    best = inter.sort_values("a", ascending=False).drop_duplicates("building_id")
    hh = best.groupby("grid_code")["households"].sum()
    n = best.groupby("grid_code").size()
    fac = gpd.sjoin(f[["geometry"]].to_crs(crs), gm[["grid_code", "geometry"]], predicate="within")
    fac_n = fac.groupby("grid_code").size()
    area = gm.area.to_numpy()
    out = pd.DataFrame(
        {
            "grid_code": g["grid_code"].astype(str),
            "households": g["grid_code"].map(hh).fillna(0).astype(int).to_numpy(),
            "building_count": g["grid_code"].map(n).fillna(0).astype(int).to_numpy(),
            "area_m2": area,
            "polsby_popper": 4 * np.pi * area / gm.length.to_numpy() ** 2,
            "facilities_total": g["grid_code"].map(fac_n).fillna(0).astype(int).to_numpy(),
        }
    )
    on = staff[staff["grid_code"].isin(g["grid_code"])]
    out["staff_count"] = out["grid_code"].map(on.groupby("grid_code").size()).fillna(0)
    out["staff_count"] = out["staff_count"].astype(int)
    return out.set_index("grid_code")


def assert_figures_match(store, settings=DEFAULT) -> None:
    g = store.read("grids").set_index("grid_code")
    want = independent_figures(store, settings)
    for col in ("households", "building_count", "facilities_total", "staff_count"):
        got = pd.to_numeric(g[col]).astype(int)
        bad = got[got != want[col]]
        assert bad.empty, f"{col}: {dict(bad)} vs {dict(want.loc[bad.index, col])}"
    assert np.allclose(pd.to_numeric(g["area_m2"]), want["area_m2"], atol=0.1)
    assert np.allclose(pd.to_numeric(g["polsby_popper"]), want["polsby_popper"], atol=1e-4)
    lo, hi = settings.grid.min_households, settings.grid.max_households
    for code, row in g.iterrows():
        flags = str(row["flags"] or "")
        hh = int(row["households"])
        if row["kind"] != "residential" or lo <= hh <= hi:
            assert "below_min" not in flags and "above_max" not in flags, (code, flags)
        else:
            side = "below_min" if hh < lo else "above_max"
            assert side in flags, (code, hh, flags)
    # buildings carry the grid counted for them
    b = store.read("buildings")
    hh = b.groupby("grid_code")["households"].sum()
    assert (g["households"].reindex(hh.index) == hh).all()


# -- the test --------------------------------------------------------------------------------
def test_hand_edits_then_refresh_recount_versions_and_as_of_lookup(delineated):
    store = delineated
    g0 = store.read("grids")
    assert (g0["valid_from"] == DELINEATED).all() and g0["valid_to"].isna().all()
    v0 = store.read("grid_versions")
    assert len(v0) == len(g0) and set(v0["reason"]) == {"first plan"}
    assert set(v0["command"]) == {"delineate"}
    crs = metric_crs_for(g0)
    res = g0[g0["kind"] == "residential"]
    pairs = [(i, j) for i, j in _neighbours(g0, crs) if i in res.index and j in res.index]
    a, b = pairs[0]
    code_a, code_b = g0["grid_code"].iloc[a], g0["grid_code"].iloc[b]
    point_b = shapely.point_on_surface(g0.geometry.iloc[b])
    area_a, area_b = g0.to_crs(crs).area.iloc[[a, b]]
    used = {a, b}
    c = next(i for i in res.index if i not in used)
    code_c = g0["grid_code"].iloc[c]
    used.add(c)
    gone = next(i for i in res.index[::-1] if i not in used)
    code_gone = g0["grid_code"].iloc[gone]
    # the edits, one after another, as a planner saves them
    edited = g0.drop(index=gone).reset_index(drop=True)  # delete a grid
    idx = {code: i for i, code in enumerate(edited["grid_code"])}
    edited = merge(edited, idx[code_a], idx[code_b])
    idx = {code: i for i, code in enumerate(edited["grid_code"])}
    edited = split(edited, idx[code_c])
    rest = [i for i, code in enumerate(edited["grid_code"]) if code not in {code_a, code_c}]
    edited, moved_rows = move_shared_vertex(edited, rest[0])
    moved = set(edited["grid_code"].iloc[moved_rows]) - {code_a, code_c}
    store.write("grids", edited)  # QGIS saves the layer; figures are now stale

    job = workflows.refresh(store, DEFAULT, effective=EDITED, reason="grid meeting 2025-02")
    assert_figures_match(store)
    g1 = store.read("grids")
    codes = set(g1["grid_code"])
    assert g1["grid_code"].is_unique
    # codes by today's rules: kept at IoU >= 0.5, new numbers never reused
    merged_iou = max(area_a, area_b) / (area_a + area_b)
    kept_merged = code_a if area_a >= area_b else code_b
    assert (kept_merged in codes) == (merged_iou >= DEFAULT.grid.recode_min_iou)
    assert code_gone not in codes and code_c in codes  # the larger split piece keeps it
    registry = store.read("code_registry")
    issued_before = set(v0["grid_code"])
    new_codes = codes - issued_before
    assert new_codes and all(
        int(n[12:]) > max(int(x[12:]) for x in issued_before if x[:12] == n[:12]) for n in new_codes
    )
    assert set(registry.loc[registry["status"] == "retired", "grid_code"]) >= {code_gone}
    # versions: the old ones closed on the edit date, new ones opened
    v1 = store.read("grid_versions")
    closed = v1[v1["valid_to"] == EDITED]
    assert code_gone in set(closed["grid_code"]) and code_c in set(closed["grid_code"])
    assert moved <= set(closed["grid_code"])
    opened = v1[v1["valid_from"] == EDITED]
    assert set(opened["grid_code"]) >= new_codes | {code_c} | moved
    assert set(opened["reason"]) == {"grid meeting 2025-02"}
    assert (g1.loc[g1["grid_code"].isin(opened["grid_code"]), "valid_from"] == EDITED).all()
    # crossings of reshaped and new grids recounted by the audit's rule
    found = store.read("grid_findings")
    crossing = set(found.loc[found["check"] == "arterial_crossing", "grid_code"])
    for r in g1[g1["grid_code"].isin(opened["grid_code"])].itertuples():
        assert (int(r.crossings) > 0) == (r.grid_code in crossing), r.grid_code
    assert job.stats["retired"] >= 2 and job.stats["created"] >= 1
    history = workflows.history(v1, code_c)
    assert list(history["version"]) == [1, 2]
    assert list(history["valid_from"]) == [DELINEATED, EDITED]
    assert list(history["valid_to"].fillna("")) == [EDITED, ""]
    # as-of lookup: before the edit the point answers the old grid, after it the merged one
    old = workflows.lookup_as_of(store, DEFAULT, BEFORE_EDIT).point(point_b.x, point_b.y)
    assert old["grid"]["grid_code"] == code_b
    new = workflows.lookup_as_of(store, DEFAULT, AFTER_EDIT).point(point_b.x, point_b.y)
    merged_code = g1.loc[g1.contains(point_b), "grid_code"].iloc[0]
    assert new["grid"]["grid_code"] == merged_code
    before = workflows.lookup_as_of(store, DEFAULT, "2024-12-31")
    assert before.point(point_b.x, point_b.y)["grid"] is None  # before the first plan
    # a second refresh with nothing changed changes nothing
    again = workflows.refresh(store, DEFAULT, effective="2025-04-01")
    assert again.stats["created"] == again.stats["reshaped"] == again.stats["retired"] == 0
    assert len(store.read("grid_versions")) == len(v1)
    pd.testing.assert_frame_equal(store.read("grids"), g1)  # a refresh of a refresh


def test_refresh_fixes_the_stale_figures_of_a_merge(delineated):
    """The issue's case: a merge saved by hand, then `assign` — the grid's households,
    buildings and area follow, and the band flag says why it is out of range."""
    store = delineated
    g0 = store.read("grids")
    crs = metric_crs_for(g0)
    res = g0[g0["kind"] == "residential"]
    a, b = next((i, j) for i, j in _neighbours(g0, crs) if i in res.index and j in res.index)
    store.write("grids", merge(g0, a, b))
    workflows.assign(store, DEFAULT, effective=None) if False else workflows.assign(store, DEFAULT)
    assert_figures_match(store)
    g1 = store.read("grids")
    hh = g0["households"].iloc[a] + g0["households"].iloc[b]
    row = g1[g1.geometry.intersects(shapely.point_on_surface(g0.geometry.iloc[b]))].iloc[0]
    assert int(row["households"]) == hh
    if hh > DEFAULT.grid.max_households:
        assert str(row["flags"]).startswith("above_max")
    findings = store.read("grid_findings")
    assert (findings["check"] == "households_out_of_range").sum() == int(
        hh > DEFAULT.grid.max_households
    )


def test_diff_between_dates_and_between_workspaces(demo_city_gpkg, tmp_path):
    """A merge of two grids as a change order: the gone grid's buildings and households
    move to the kept one, counted per community; the same from two dates of one
    workspace, from two workspaces, and through `gridgis diff`."""
    from typer.testing import CliRunner

    from gridgis.cli import app

    before, after = tmp_path / "before.gpkg", tmp_path / "after.gpkg"
    shutil.copy(demo_city_gpkg, before)
    store = GeoPackageStore(before)
    workflows.delineate(store, DEFAULT, effective=DELINEATED)
    store.close()
    shutil.copy(before, after)
    store = GeoPackageStore(after)
    g0 = store.read("grids")
    crs = metric_crs_for(g0)
    res = g0[g0["kind"] == "residential"]
    a, b = next((i, j) for i, j in _neighbours(g0, crs) if i in res.index and j in res.index)
    big, small = (a, b) if g0.to_crs(crs).area.iloc[a] >= g0.to_crs(crs).area.iloc[b] else (b, a)
    kept, gone = g0["grid_code"].iloc[big], g0["grid_code"].iloc[small]
    store.write("grids", merge(g0, big, small))
    workflows.refresh(store, DEFAULT, effective=EDITED)
    b0 = store.read("buildings")
    hh_gone = int(g0["households"].iloc[small])
    n_gone = int(g0["building_count"].iloc[small])

    by_dates = workflows.diff_plans(store, DEFAULT, from_date=BEFORE_EDIT, to_date=AFTER_EDIT)
    by_files = workflows.diff_plans(
        store, DEFAULT, old_store=GeoPackageStore(before), to_date=EDITED, layer=None
    )
    for job in (by_dates, by_files):
        d = job.detail
        rows = {r.change: r for r in d.changes.itertuples()}
        assert set(rows) == {"reshaped", "retired"}, d.changes
        assert rows["retired"].old_code == gone and rows["reshaped"].new_code == kept
        assert rows["reshaped"].buildings_in == n_gone == rows["retired"].buildings_out
        assert rows["reshaped"].households_in == hh_gone == rows["retired"].households_out
        moved = d.moves[d.moves["item"] == "buildings"]
        assert set(moved["old_code"]) == {gone} and set(moved["new_code"]) == {kept}
        assert len(moved) == n_gone
        assert set(moved["id"]) <= set(b0.loc[b0["grid_code"] == kept, "building_id"])
        comm = d.per_community.set_index("community_code").loc[g0["community_code"].iloc[big]]
        assert comm["retired"] == 1 and comm["reshaped"] == 1
        assert comm["households_moved"] == hh_gone
    assert by_files.stats["addresses_moved"] > 0 or n_gone == 0
    first = workflows.diff_plans(store, DEFAULT, from_date="2024-12-31", to_date=DELINEATED)
    assert first.stats["created"] == len(g0) and first.stats["retired"] == 0
    assert first.stats["buildings_moved"] == len(b0)  # from no grid into their first one
    assert by_dates.written == {"grid_changes": 2} and store.has("grid_changes")
    page = tmp_path / "change.html"
    res = CliRunner().invoke(
        app,
        [
            "--lang",
            "zh",
            "diff",
            "-w",
            str(after),
            "--from",
            BEFORE_EDIT,
            "--to",
            AFTER_EDIT,
            "--out",
            str(page),
        ],
    )
    assert res.exit_code == 0, res.output
    text = page.read_text(encoding="utf-8")
    assert "网格调整单" in text and gone in text and kept in text and AFTER_EDIT in text
    assert "撤销" in res.output
    res = CliRunner().invoke(app, ["diff", str(before), "-w", str(after)])
    assert res.exit_code == 0 and "1 retired" in res.output
    res = CliRunner().invoke(app, ["--lang", "en", "history", kept, "-w", str(after)])
    assert res.exit_code == 0 and EDITED in res.output and DELINEATED in res.output
    res = CliRunner().invoke(
        app, ["lookup", "-w", str(after), "--lon", "0", "--lat", "0", "--as-of", "nope"]
    )
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output


def test_cli_refresh_after_a_building_edit(demo_delineated_gpkg, city_workspace):
    """A building's households corrected by hand: `gridgis refresh` moves the grid's
    figure, keeps every code and geometry (no new version) and says what it wrote."""
    from typer.testing import CliRunner

    from gridgis.cli import app

    path = city_workspace(demo_delineated_gpkg)
    store = GeoPackageStore(path)
    b = store.read("buildings")
    g0 = store.read("grids")
    v0 = store.read("grid_versions")
    i = int(np.flatnonzero(b["households"].to_numpy() > 0)[0])
    code = b["grid_code"].iloc[i]
    b.loc[b.index[i], "households"] = int(b["households"].iloc[i]) + 1000
    store.write("buildings", b)
    store.close()
    res = CliRunner().invoke(
        app, ["--lang", "en", "refresh", "-w", str(path), "--reason", "survey"]
    )
    assert res.exit_code == 0, res.output
    assert "Refreshed" in res.output and "grid_versions" in res.output
    store = GeoPackageStore(path)
    g1 = store.read("grids").set_index("grid_code")
    before = g0.set_index("grid_code")["households"]
    assert int(g1.loc[code, "households"]) == int(before[code]) + 1000
    assert str(g1.loc[code, "flags"]).startswith("above_max")
    assert list(g1.index) == list(before.index)
    assert len(store.read("grid_versions")) == len(v0)  # geometry unchanged: no version
    findings = store.read("grid_findings")
    assert code in set(findings.loc[findings["check"] == "households_out_of_range", "grid_code"])
    assert_figures_match(store)
    store.close()
