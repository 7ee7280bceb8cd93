"""Hand edits of grids (gridgis.workflows.edits and POST /grids/edits): worked answers on
a hand-made community, saving and undo on the demo city (both stores), the API."""

from __future__ import annotations

import os
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from gridgis.crs import metric_crs_for
from gridgis.errors import InputError, NotFoundError, RuleError
from gridgis.standards import DEFAULT
from gridgis.store import GeoPackageStore, open_store
from gridgis.workflows import edits

X0, Y0 = 118.80, 32.00
TOKEN = "edit-token-7c1d"


def _box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def _square(cx, cy, side=0.0001):
    return _box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


@pytest.fixture()
def tiny():
    """Community 0–0.004° × 0–0.002° (about 380 m × 220 m): grid A the west half, grid B
    the east half; four buildings in A on a 2×2 lattice, two in B."""
    comm = "320100001001"
    grids = gpd.GeoDataFrame(
        {
            "grid_code": [comm + "001", comm + "002"],
            "community_code": [comm, comm],
            "kind": ["residential", "residential"],
            "households": [440, 410],
        },
        geometry=[_box(0, 0, 0.002, 0.002), _box(0.002, 0, 0.004, 0.002)],
        crs="EPSG:4326",
    )
    b = gpd.GeoDataFrame(
        {
            "building_id": ["A1", "A2", "A3", "A4", "B1", "B2"],
            "households": [100, 120, 130, 90, 200, 210],
        },
        geometry=[
            _square(0.0005, 0.0005),
            _square(0.0015, 0.0005),
            _square(0.0015, 0.0015),
            _square(0.0005, 0.0015),
            _square(0.0025, 0.0005),
            _square(0.0035, 0.0015),
        ],
        crs="EPSG:4326",
    )
    road = gpd.GeoDataFrame(
        {"road_id": ["R1"], "road_class": ["secondary"]},
        geometry=[shapely.LineString([(X0 - 0.001, Y0 + 0.001), (X0 + 0.005, Y0 + 0.001)])],
        crs="EPSG:4326",
    )
    return grids, b, road


def _hh(p, side="after"):
    return [f["households"] for f in p[side]]


def _areas(frame):
    return shapely.area(frame.geometry.to_crs(metric_crs_for(frame)).to_numpy())


def test_move_building_worked(tiny):
    grids, b, roads = tiny
    res = edits.run_edit(
        grids,
        {"op": "move_building", "building_id": "A2", "to_grid": "320100001001002"},
        DEFAULT,
        b,
        roads,
    )
    p = res.preview
    assert _hh(p, "before") == [440, 410]
    assert _hh(p) == [440 - 120, 410 + 120]  # 320, 530
    assert [f["building_count"] for f in p["after"]] == [3, 3]
    # 530 > grid.max_households = 500: band broken, the rest holds
    assert p["checks"] == {"band": False, "contiguity": True, "tiling": True}
    # A2's cell is the south-east quarter of A (the lattice's Voronoi cell)
    a0, b0 = _areas(grids)
    a1, b1 = _areas(res.grids)
    assert a1 == pytest.approx(0.75 * a0, rel=0.01)
    assert a1 + b1 == pytest.approx(a0 + b0, abs=1.0)
    assert edits.locate_buildings(res.grids, b).tolist() == [0, 1, 0, 0, 1, 1]


def test_move_building_not_touching_target_breaks_contiguity(tiny):
    grids, b, roads = tiny
    res = edits.run_edit(
        grids,
        {"op": "move_building", "building_id": "A1", "to_grid": "320100001001002"},
        DEFAULT,
        b,
        roads,
    )
    assert res.preview["checks"]["contiguity"] is False  # A1's cell does not touch B
    assert res.preview["checks"]["tiling"] is True
    assert res.preview["after"][1]["parts"] == 2


def test_move_block_worked(tiny):
    grids, b, roads = tiny
    edit = {"op": "move_block", "point": [X0 + 0.0005, Y0 + 0.0003], "to_grid": "320100001001002"}
    res = edits.run_edit(grids, edit, DEFAULT, b, roads)
    # the block south of road R1, its part in A (A1, A2) goes to B
    assert _hh(res.preview) == [130 + 90, 410 + 100 + 120]
    assert res.preview["checks"] == {"band": False, "contiguity": True, "tiling": True}
    assert _areas(res.grids)[0] == pytest.approx(0.5 * _areas(grids)[0], rel=0.01)


def test_merge_worked(tiny):
    grids, b, roads = tiny
    res = edits.run_edit(
        grids, {"op": "merge", "grids": ["320100001001001", "320100001001002"]}, DEFAULT, b, roads
    )
    assert len(res.grids) == 1
    assert res.grids["grid_code"].tolist() == ["320100001001001"]
    assert _hh(res.preview) == [850]
    assert res.preview["checks"] == {"band": False, "contiguity": True, "tiling": True}
    assert _areas(res.grids)[0] == pytest.approx(_areas(grids).sum(), abs=1.0)


def test_split_by_line_and_by_road_worked(tiny):
    grids, b, roads = tiny
    line = [[X0 + 0.0012, Y0 - 0.001], [X0 + 0.0012, Y0 + 0.003]]
    res = edits.run_edit(
        grids, {"op": "split", "grid_code": "320100001001001", "line": line}, DEFAULT, b, roads
    )
    # the larger west part (A1, A4) keeps the row; A2, A3 form a new grid without code
    assert _hh(res.preview) == [190, 250]
    assert res.preview["after"][1]["grid_code"] is None
    assert pd.isna(res.grids["grid_code"].iloc[2])
    assert res.preview["checks"] == {"band": False, "contiguity": True, "tiling": True}
    road = edits.run_edit(
        grids, {"op": "split", "grid_code": "320100001001001", "road_id": "R1"}, DEFAULT, b, roads
    )
    assert sorted(_hh(road.preview)) == [220, 220]
    assert road.preview["checks"]["tiling"] is True


def test_bad_edits_are_clear_errors(tiny):
    grids, b, roads = tiny
    three = pd.concat(
        [grids, grids.iloc[[1]].assign(grid_code="320100001001003")], ignore_index=True
    )
    three.loc[2, "geometry"] = _box(0.004, 0, 0.006, 0.002)
    three = gpd.GeoDataFrame(three, geometry="geometry", crs="EPSG:4326")
    with pytest.raises(InputError, match="not neighbours"):
        edits.merge_grids(three, "320100001001001", "320100001001003")
    with pytest.raises(InputError, match="does not cross"):
        edits.split_grid(
            grids, "320100001001001", shapely.LineString([(X0, Y0 + 1), (X0 + 1, Y0 + 1)])
        )
    with pytest.raises(InputError, match="op 'rotate'"):
        edits.run_edit(grids, {"op": "rotate"}, DEFAULT, b, roads)
    with pytest.raises(NotFoundError, match="no building 'Z9'"):
        edits.run_edit(
            grids,
            {"op": "move_building", "building_id": "Z9", "to_grid": "320100001001002"},
            DEFAULT,
            b,
            roads,
        )
    with pytest.raises(NotFoundError, match="no grid"):
        edits.run_edit(
            grids,
            {"op": "merge", "grids": ["320100001001001", "320100001001009"]},
            DEFAULT,
            b,
            roads,
        )
    with pytest.raises(InputError, match="missing to_grid"):
        edits.run_edit(grids, {"op": "move_building", "building_id": "A2"}, DEFAULT, b, roads)


# -- saving and undo on the demo city, both stores ----------------------------------------
def fresh_pg_url() -> str:
    from gridgis.store.pgtemp import PostgresUnavailable, find_bindir, fresh_workspace_url

    if not os.environ.get("GRIDGIS_TEST_DATABASE_URL"):
        try:
            find_bindir()
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL not installed: {exc}")
    return fresh_workspace_url()


@pytest.fixture(params=["gpkg", "postgis"])
def workspace(request, demo_delineated_gpkg, tmp_path):
    if request.param == "gpkg":
        shutil.copy(demo_delineated_gpkg, tmp_path / "ws.gpkg")
        store = open_store(tmp_path / "ws.gpkg")
    else:
        src = GeoPackageStore(demo_delineated_gpkg)
        store = open_store(fresh_pg_url())
        store.write_many({n: src.read(n) for n in src.layers()})
        src.close()
    yield store
    store.close()


def movable(store):
    """(building_id, source grid, target grid) of the first building of a residential
    grid whose move to a neighbour keeps contiguity and tiling."""
    g = store.read("grids").to_crs("EPSG:4326").reset_index(drop=True)
    b = store.read("buildings")
    where = edits.locate_buildings(g, b)
    crs = metric_crs_for(g)
    for i in range(len(g)):
        for j in range(len(g)):
            if i == j or g["kind"][i] != "residential" or g["kind"][j] != "residential":
                continue
            if g["community_code"][i] != g["community_code"][j]:
                continue
            if edits._shared_m(g, i, j, crs) < 50:
                continue
            for k in np.flatnonzero(where == i):
                edit = {
                    "op": "move_building",
                    "building_id": str(b["building_id"][k]),
                    "to_grid": str(g["grid_code"][j]),
                }
                p = edits.preview_edit(store, DEFAULT, edit).preview
                if p["checks"]["contiguity"] and p["checks"]["tiling"]:
                    return edit, str(g["grid_code"][i]), int(b["households"][k])
    raise AssertionError("no movable building in the demo city")


def recount(store) -> dict[str, int]:
    g = store.read("grids").to_crs("EPSG:4326").reset_index(drop=True)
    b = store.read("buildings")
    where = edits.locate_buildings(g, b)
    hh = pd.to_numeric(b["households"]).fillna(0).to_numpy()
    return {str(c): int(hh[where == i].sum()) for i, c in enumerate(g["grid_code"])}


def test_apply_and_undo_on_the_demo_city(workspace):
    store = workspace
    before = store.read("grids").set_index("grid_code")
    versions_before = store.read("grid_versions")
    edit, src, moved = movable(store)
    dst = edit["to_grid"]
    res, job = edits.apply_edit(store, DEFAULT, edit, reason="社区会议决定", effective="2025-03-01")
    assert job.stats["changes"] == {"created": [], "reshaped": sorted([src, dst]), "retired": []}
    after = store.read("grids").set_index("grid_code")
    assert after.loc[src, "households"] == before.loc[src, "households"] - moved
    assert after.loc[dst, "households"] == before.loc[dst, "households"] + moved
    assert after["households"].sum() == before["households"].sum()
    assert {k: int(v) for k, v in after["households"].items()} == recount(store)
    assert [f["households"] for f in res.preview["after"]] == [
        after.loc[src, "households"],
        after.loc[dst, "households"],
    ]
    assert after.loc[src, "valid_from"] == "2025-03-01"
    v = store.read("grid_versions")
    assert len(v) == len(versions_before) + 2
    new = v[v["valid_from"] == "2025-03-01"]
    assert sorted(new["grid_code"]) == sorted([src, dst])
    assert set(new["command"]) == {"edit"} and set(new["reason"]) == {"社区会议决定"}
    log = store.read("edit_log")
    assert sorted(log["grid_code"]) == sorted([src, dst]) and set(log["edit_id"]) == {"1"}

    job = edits.undo_last(store, DEFAULT)
    assert job.stats["changes"] == {"created": [], "reshaped": [], "retired": []}
    back = store.read("grids").set_index("grid_code").sort_index()
    assert back["households"].to_dict() == before.sort_index()["households"].to_dict()
    assert shapely.equals_exact(
        back.geometry.to_numpy(), before.sort_index().geometry.to_numpy(), tolerance=1e-9
    ).all()
    v2 = store.read("grid_versions")
    assert len(v2) == len(versions_before)
    assert (v2["valid_to"].fillna("") == "").sum() == (
        versions_before["valid_to"].fillna("") == ""
    ).sum()
    assert store.read("edit_log")["undone"].notna().all()
    with pytest.raises(NotFoundError, match="undone already"):
        edits.undo_last(store, DEFAULT)


def test_merge_then_split_on_the_demo_city(demo_delineated_gpkg, tmp_path):
    shutil.copy(demo_delineated_gpkg, tmp_path / "ws.gpkg")
    store = open_store(tmp_path / "ws.gpkg")
    edit, src, _ = movable(store)
    before = store.read("grids").set_index("grid_code")
    total = int(before.loc[src, "households"] + before.loc[edit["to_grid"], "households"])
    res, job = edits.apply_edit(store, DEFAULT, {"op": "merge", "grids": [src, edit["to_grid"]]})
    assert len(job.stats["changes"]["retired"]) == 1
    g = store.read("grids")
    assert len(g) == len(before) - 1
    merged = [c for c in job.stats["changes"]["reshaped"]] or job.stats["changes"]["created"]
    assert (
        int(g.set_index("grid_code").loc[merged[0], "households"])
        == total
        == res.preview["after"][0]["households"]
    )
    assert g.set_index("grid_code")["households"].to_dict() == recount(store)
    # a move that breaks contiguity is refused and nothing is written
    edits.undo_last(store, DEFAULT)
    assert len(store.read("grids")) == len(before)
    store.close()


def test_broken_edit_is_refused(tiny, tmp_path):
    grids, b, roads = tiny
    store = open_store(tmp_path / "tiny.gpkg")
    comm = gpd.GeoDataFrame(
        {"community_code": ["320100001001"], "street_code": ["320100001"], "name": ["测试社区"]},
        geometry=[_box(0, 0, 0.004, 0.002)],
        crs="EPSG:4326",
    )
    store.write_many({"grids": grids, "buildings": b, "roads": roads, "communities": comm})
    edit = {"op": "move_building", "building_id": "A1", "to_grid": "320100001001002"}
    with pytest.raises(RuleError, match="连续性"):
        edits.apply_edit(store, DEFAULT, edit)
    assert not store.has("edit_log")
    ok = {"op": "move_building", "building_id": "A2", "to_grid": "320100001001002"}
    edits.apply_edit(store, DEFAULT, ok, effective="2025-03-01")
    g = store.read("grids").set_index("grid_code")
    assert g["households"].to_dict() == {"320100001001001": 320, "320100001001002": 530}
    assert "above_max" in g.loc["320100001001002", "flags"]
    edits.undo_last(store, DEFAULT)
    g = store.read("grids").set_index("grid_code")
    assert g["households"].to_dict() == {"320100001001001": 440, "320100001001002": 410}
    store.close()


# -- the API ---------------------------------------------------------------------------------
@pytest.fixture()
def client(workspace):
    from api.app import create_app

    with TestClient(create_app(workspace, token=TOKEN)) as c:
        c.store = workspace
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_api_edits(client):
    edit, src, moved = movable(client.store)
    assert client.post("/grids/edits/preview", json=edit).status_code == 401
    assert client.post("/grids/edits", json=edit).status_code == 401
    assert client.post("/grids/edits/undo").status_code == 401
    bad = client.post("/grids/edits/preview", json={"op": "rotate"}, headers=AUTH)
    assert bad.status_code == 422 and "op" in bad.json()["detail"]
    missing = client.post("/grids/edits/preview", json={"op": "merge"}, headers=AUTH)
    assert missing.status_code == 422 and "grids" in missing.json()["detail"]
    assert client.post("/grids/edits/undo", headers=AUTH).status_code == 404
    p = client.post("/grids/edits/preview", json=edit, headers=AUTH)
    assert p.status_code == 200, p.text
    assert p.json()["checks"]["tiling"] is True
    before = client.get(f"/grids/{src}").json()["statistics"]["households"]
    r = client.post("/grids/edits", json={**edit, "reason": "会议"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert client.get(f"/grids/{src}").json()["statistics"]["households"] == before - moved
    hist = client.get(f"/grids/{src}/history")
    assert hist.status_code == 200, hist.text
    versions = hist.json()["versions"]
    assert [v["command"] for v in versions][-1] == "edit" and versions[-1]["reason"] == "会议"
    assert versions[-2]["valid_to"] == versions[-1]["valid_from"]
    u = client.post("/grids/edits/undo", headers=AUTH)
    assert u.status_code == 200, u.text
    assert client.get(f"/grids/{src}").json()["statistics"]["households"] == before
    after_undo = client.get(f"/grids/{src}/history").json()["versions"]
    assert len(after_undo) == len(versions) - 1 and not after_undo[-1]["valid_to"]
    page = client.get(f"/edit/{src[:12]}")
    assert page.status_code == 200 and "/edit/static/edit.js" in page.text
    data = client.get(f"/edit/{src[:12]}/data").json()
    assert src in [f["properties"]["grid_code"] for f in data["grids"]["features"]]
    assert client.get("/edit/static/edit.js").status_code == 200
    assert client.get("/edit/static/../../errors.py").status_code == 404


def test_every_op_keeps_households_on_the_demo_city(demo_delineated_gpkg):
    """Blocks moved to each neighbour, merges and splits along roads: the households of
    the grids involved add up to the same before and after, and tiling holds."""
    store = open_store(demo_delineated_gpkg)
    g = store.read("grids").to_crs("EPSG:4326").reset_index(drop=True)
    crs = metric_crs_for(g)
    b, roads = store.read("buildings"), store.read("roads")
    store.close()
    seen = 0
    for i in range(len(g)):
        for j in range(len(g)):
            if i == j or g["community_code"][i] != g["community_code"][j]:
                continue
            if edits._shared_m(g, i, j, crs) < 50:
                continue
            pt = g.geometry[i].representative_point()
            to = str(g["grid_code"][j])
            for edit in (
                {"op": "move_block", "point": [pt.x, pt.y], "to_grid": to},
                {"op": "merge", "grids": [str(g["grid_code"][i]), to]},
            ):
                try:
                    p = edits.run_edit(g, edit, DEFAULT, b, roads).preview
                except InputError:  # a point on a road, a block that would empty the grid
                    continue
                assert sum(_hh(p, "before")) == sum(_hh(p)), edit
                assert p["checks"]["tiling"], edit
                seen += 1
    assert seen >= 40
