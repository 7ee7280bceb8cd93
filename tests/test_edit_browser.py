"""The edit page in real headless Chromium (Debian's /usr/bin/chromium driven by
playwright) against a real ``gridgis serve`` on loopback: edits made by clicking — move a
building, merge two grids, split one along a drawn line, undo — change the workspace
exactly as the same edits made through the API do (grids layer: codes, households,
buildings, dates, area within 1 m²)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from gridgis.crs import metric_crs_for
from gridgis.errors import GridgisError
from gridgis.standards import DEFAULT
from gridgis.store import open_store
from gridgis.workflows import edits

TOKEN = "browser-edit-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts" / "edit"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def served(demo_delineated_gpkg, tmp_path, gridgis_serve):
    """(base URL, path) of ``gridgis serve`` over a private copy of the delineated demo."""
    path = tmp_path / "browser.gpkg"
    shutil.copy(demo_delineated_gpkg, path)
    with gridgis_serve(["--workspace", str(path)], token=TOKEN) as base:
        yield base, path


@pytest.fixture()
def api(demo_delineated_gpkg, tmp_path):
    """A TestClient over a second copy: the same edits made through the API."""
    from api.app import create_app

    path = tmp_path / "api.gpkg"
    shutil.copy(demo_delineated_gpkg, path)
    store = open_store(path)
    with TestClient(create_app(store, token=TOKEN)) as c:
        c.path = path
        yield c
    store.close()


# -- choosing the edits ---------------------------------------------------------------------
def _grids(path):
    store = open_store(path)
    try:
        return store.read("grids").to_crs("EPSG:4326").reset_index(drop=True), store.read(
            "buildings"
        ).to_crs("EPSG:4326")
    finally:
        store.close()


def _pairs(g):
    crs = metric_crs_for(g)
    out = []
    for i in range(len(g)):
        for j in range(len(g)):
            if i != j and g["community_code"][i] == g["community_code"][j]:
                if edits._shared_m(g, i, j, crs) > 50:
                    out.append((i, j))
    return out


def choose(path):
    """A building move, then a merge of two other grids and a split of a third, all in one
    community, each keeping contiguity and tiling."""
    g, b = _grids(path)
    where = edits.locate_buildings(g, b)
    res = (g["kind"] == "residential").to_numpy()
    for i, j in _pairs(g):
        if not (res[i] and res[j]):
            continue
        for k in np.flatnonzero(where == i):
            e = {
                "op": "move_building",
                "building_id": str(b["building_id"][k]),
                "to_grid": str(g["grid_code"][j]),
            }
            p = edits.run_edit(g, e, DEFAULT, b).preview
            if not (p["checks"]["contiguity"] and p["checks"]["tiling"]):
                continue
            comm = g["community_code"][i]
            others = [
                (a, c)
                for a, c in _pairs(g)
                if a < c and g["community_code"][a] == comm and not {a, c} & {i, j}
            ]
            if not others:
                continue
            a, c = others[0]
            rest = [
                s for s in range(len(g)) if g["community_code"][s] == comm and s not in {i, j, a, c}
            ]
            for s in rest:
                poly = g.geometry[s]
                cy = poly.representative_point().y
                x0, _, x1, _ = poly.bounds
                pad = (x1 - x0) * 0.04
                line = [[x0 - pad, cy], [(x0 + x1) / 2, cy], [x1 + pad, cy]]
                sp = {"op": "split", "grid_code": str(g["grid_code"][s]), "line": line}
                pv = edits.run_edit(g, sp, DEFAULT, b).preview
                if pv["checks"]["contiguity"] and pv["checks"]["tiling"]:
                    return {
                        "community": str(comm),
                        "move": (e, b.geometry[k].representative_point(), g.geometry[j]),
                        "merge": (
                            [str(g["grid_code"][a]), str(g["grid_code"][c])],
                            g.geometry[a],
                            g.geometry[c],
                        ),
                        "split": (sp, poly),
                    }
    raise AssertionError("no suitable grids in the demo city")


def inside_not_on(poly, buildings):
    """A point inside *poly* away from every building (a click on the grid itself)."""
    minx, miny, maxx, maxy = poly.bounds
    foot = shapely.union_all(buildings.geometry.to_numpy()).buffer(0.0001)
    for fx in np.linspace(0.1, 0.9, 9):
        for fy in np.linspace(0.1, 0.9, 9):
            pt = shapely.Point(minx + fx * (maxx - minx), miny + fy * (maxy - miny))
            if poly.buffer(-0.0001).contains(pt) and not foot.contains(pt):
                return pt
    return poly.representative_point()


# -- driving the page -----------------------------------------------------------------------
def xy(page, lon, lat):
    return page.evaluate(
        """([lon, lat]) => { const m = window.gridEdit.map;
        const p = m.latLngToContainerPoint([lat, lon]);
        const r = m.getContainer().getBoundingClientRect();
        return [p.x + r.left, p.y + r.top]; }""",
        [lon, lat],
    )


def click(page, pt):
    x, y = xy(page, pt.x, pt.y)
    page.mouse.click(x, y)
    page.wait_for_timeout(250)


def preview_then_save(page, saved: int):
    page.wait_for_selector("#ge-preview table", timeout=30_000)
    assert page.locator("#ge-preview li[data-check=tiling] .ge-yes").count() == 1
    page.click("#ge-save")
    page.wait_for_function(f"window.gridEdit.saved >= {saved}", timeout=60_000)
    page.wait_for_function("window.gridEdit.ready", timeout=30_000)


def layer_of(path):
    store = open_store(path)
    try:
        g = store.read("grids")
    finally:
        store.close()
    crs = metric_crs_for(g)
    g = g.assign(_area=shapely.area(g.geometry.to_crs(crs).to_numpy()))
    cols = ["grid_code", "households", "building_count", "valid_from", "_area"]
    return pd.DataFrame(g[cols]).sort_values("grid_code").reset_index(drop=True)


def same_layer(a_path, b_path):
    a, b = layer_of(a_path), layer_of(b_path)
    assert a["grid_code"].tolist() == b["grid_code"].tolist()
    assert a["households"].tolist() == b["households"].tolist()
    assert a["building_count"].tolist() == b["building_count"].tolist()
    assert a["valid_from"].astype(str).tolist() == b["valid_from"].astype(str).tolist()
    assert np.abs(a["_area"].to_numpy() - b["_area"].to_numpy()).max() <= 1.0


def test_clicked_edits_equal_api_edits(browser, served, api):
    base, path = served
    plan = choose(path)
    _, b = _grids(path)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    posted: list[dict] = []
    page.on(
        "request",
        lambda r: (
            posted.append(json.loads(r.post_data or "{}"))
            if r.method == "POST" and r.url.endswith("/grids/edits")
            else None
        ),
    )
    page.goto(f"{base}/edit/{plan['community']}")
    page.wait_for_function("window.gridEdit && window.gridEdit.ready", timeout=30_000)
    page.fill("#ge-token", TOKEN)

    # 1. move a building: click it, then the neighbouring grid
    edit, building_pt, target = plan["move"]
    page.click("button[data-mode=move_building]")
    click(page, building_pt)
    click(page, inside_not_on(target, b))
    preview_then_save(page, 1)
    assert posted[-1]["building_id"] == edit["building_id"]
    assert posted[-1]["to_grid"] == edit["to_grid"]
    r = api.post("/grids/edits", json=edit, headers=AUTH)
    assert r.status_code == 200, r.text
    same_layer(path, api.path)

    # 2. merge two grids
    codes, ga, gb = plan["merge"]
    page.click("button[data-mode=merge]")
    click(page, inside_not_on(ga, b))
    click(page, inside_not_on(gb, b))
    preview_then_save(page, 2)
    assert posted[-1]["grids"] == codes
    assert (
        api.post("/grids/edits", json={"op": "merge", "grids": codes}, headers=AUTH).status_code
        == 200
    )
    same_layer(path, api.path)

    # 3. split a grid along a drawn line (double-click ends it)
    sp, poly = plan["split"]
    page.click("button[data-mode=split]")
    click(page, inside_not_on(poly, b))
    for lon, lat in sp["line"][:-1]:
        click(page, shapely.Point(lon, lat))
    x, y = xy(page, *sp["line"][-1])
    page.mouse.dblclick(x, y)
    page.screenshot(path=str(ARTIFACTS / "split-preview.png"))
    preview_then_save(page, 3)
    sent = posted[-1]
    assert sent["op"] == "split" and sent["grid_code"] == sp["grid_code"]
    assert len(sent["line"]) == len(sp["line"])
    crs_m = metric_crs_for(_grids(path)[0])
    import geopandas as gpd

    drawn = gpd.GeoSeries([shapely.Point(p) for p in sent["line"]], crs="EPSG:4326").to_crs(crs_m)
    meant = gpd.GeoSeries([shapely.Point(p) for p in sp["line"]], crs="EPSG:4326").to_crs(crs_m)
    assert drawn.distance(meant).max() < 5  # the clicks landed within a few metres
    r = api.post("/grids/edits", json=sent, headers=AUTH)
    assert r.status_code == 200, r.text
    same_layer(path, api.path)
    assert len(layer_of(path)) == len(layer_of(api.path))

    # 4. undo the split, by the button and through the API
    page.click("#ge-undo")
    page.wait_for_function("window.gridEdit.saved >= 4", timeout=60_000)
    assert api.post("/grids/edits/undo", headers=AUTH).status_code == 200
    same_layer(path, api.path)
    page.screenshot(path=str(ARTIFACTS / "after-undo.png"))
    assert "已撤销" in page.inner_text("#ge-status")
    assert not errors, errors
    page.close()


def test_wrong_token_is_refused_on_the_page(browser, served):
    base, path = served
    g, b = _grids(path)
    comm = str(g["community_code"][0])
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(f"{base}/edit/{comm}")
    page.wait_for_function("window.gridEdit && window.gridEdit.ready", timeout=30_000)
    page.fill("#ge-token", "wrong")
    page.click("#ge-undo")
    page.wait_for_function(
        "document.getElementById('ge-status').textContent.includes('401')", timeout=30_000
    )
    assert "令牌无效" in page.inner_text("#ge-status")
    page.close()


def test_split_along_a_road_by_choosing_it(browser, served, api):
    base, path = served
    g, b = _grids(path)
    store = open_store(path)
    roads = store.read("roads").to_crs("EPSG:4326")
    store.close()
    found = None
    for s in range(len(g)):
        crossing = roads[roads.intersects(g.geometry[s].buffer(-0.00005))]
        for rid in crossing["road_id"].astype(str):
            edit = {"op": "split", "grid_code": str(g["grid_code"][s]), "road_id": rid}
            try:
                p = edits.run_edit(g, edit, DEFAULT, b, roads).preview
            except GridgisError:  # a road that does not cut the grid
                continue
            if p["checks"]["contiguity"] and p["checks"]["tiling"]:
                found = (edit, g.geometry[s], str(g["community_code"][s]))
                break
        if found:
            break
    if found is None:
        pytest.skip("no road cuts a grid of the demo city in two")
    edit, poly, comm = found
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(f"{base}/edit/{comm}")
    page.wait_for_function("window.gridEdit && window.gridEdit.ready", timeout=30_000)
    page.fill("#ge-token", TOKEN)
    page.click("button[data-mode=split]")
    click(page, inside_not_on(poly, b))
    page.select_option("#ge-road", edit["road_id"])
    preview_then_save(page, 1)
    page.close()
    r = api.post("/grids/edits", json=edit, headers=AUTH)
    assert r.status_code == 200, r.text
    same_layer(path, api.path)
    assert len(layer_of(path)) == len(g) + 1
