"""The map site of a big city drawn from vector tiles (issue 19, "maps that stay light").

Above ``maps.tiles_above_grids`` (lowered to 0 here, so the 10,000-household demo city
counts as big) ``gridgis map`` writes one tile page with the city, street and community
views instead of one GeoJSON page per street and community; ``gridgis tiles build``
pre-builds the tiles into an MBTiles file that ``gridgis serve`` answers from. Checked in
real Chromium against a real ``gridgis serve``: the page draws features from the served
tiles and a click goes city → street → community.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import mapbox_vector_tile
import pytest
import shapely

from gridgis import tiles
from gridgis.store import GeoPackageStore

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts" / "maps"
GRIDGIS = Path(sys.executable).parent / "gridgis"


def read_layers(path: Path) -> dict:
    from gridgis.maps.site import MAP_LAYERS

    store = GeoPackageStore(path)
    layers = {n: store.read(n) for n in MAP_LAYERS if store.has(n)}
    store.close()
    return layers


def index_of(folder: Path) -> dict:
    text = (folder / "tiles_index.js").read_text(encoding="utf-8")
    assert text.startswith("window.ggIndex = ")
    return json.loads(text[len("window.ggIndex = ") :].rstrip().rstrip(";"))


@pytest.fixture(scope="module")
def tiled_site(demo_delineated_gpkg, tmp_path_factory):
    """The demo city's workspace with pre-built tiles (by the CLI) and its tiled maps."""
    folder = tmp_path_factory.mktemp("tiled-site")
    ws = folder / "city.gpkg"
    shutil.copy(demo_delineated_gpkg, ws)
    maps = folder / "maps"
    subprocess.run(
        [str(GRIDGIS), "map", "--workspace", str(ws), "--out", str(maps)]
        + ["--set", "maps.tiles_above_grids=0"],
        check=True,
        capture_output=True,
    )
    built = subprocess.run(
        [str(GRIDGIS), "tiles", "build", "--workspace", str(ws), "--minzoom", "10"]
        + ["--maxzoom", "15", "--pmtiles", str(folder / "city.pmtiles")],
        check=True,
        capture_output=True,
        text=True,
    )
    return ws, maps, built.stdout


def test_tiled_site_pages(tiled_site):
    ws, maps, _ = tiled_site
    layers = read_layers(ws)
    comms, grids = layers["communities"], layers["grids"]
    listed = json.loads((maps / "maps.json").read_text(encoding="utf-8"))["pages"]
    # one tile page for the three levels, coverage, lookup and one board page; no board
    # per grid (maps.tiled_boards)
    assert {"index.html", "tiles.html", "coverage.html", "lookup.html", "board.html"} <= set(listed)
    assert not any(p.startswith("boards/") for p in listed)
    # the street and community pages only forward to the tile page's view: no geometry
    for code in comms["community_code"]:
        page = (maps / "communities" / f"{code}.html").read_text(encoding="utf-8")
        assert f"index.html#community={code}" in page and len(page) < 600
    for page in ("index.html", "coverage.html", "lookup.html"):
        assert (maps / page).stat().st_size < 30_000  # the same size at any city size
    # the index: each community's box holds the community, its counts add up
    idx = index_of(maps)
    assert set(idx["communities"]) == set(comms["community_code"])
    for _, c in comms.iterrows():
        entry = idx["communities"][c["community_code"]]
        x0, y0, x1, y1 = entry["b"]
        assert shapely.box(x0, y0, x1, y1).buffer(1e-5).contains(c.geometry)
        assert entry["s"] == c["street_code"]
        mine = grids[grids["community_code"] == c["community_code"]]
        assert entry["g"] == len(mine) and entry["h"] == int(mine["households"].sum())
    assert sum(s["g"] for s in idx["streets"].values()) == len(grids)


def test_below_the_threshold_the_pages_carry_their_geometry(demo_delineated_gpkg, tmp_path):
    from gridgis.maps import write_maps

    site = write_maps(read_layers(demo_delineated_gpkg), tmp_path, boards=False)
    assert not (tmp_path / "tiles.html").exists() and not (tmp_path / "tiles_index.js").exists()
    street = next(p for p in site.pages if p.parent.name == "streets")
    assert '"type": "FeatureCollection"' in street.read_text(encoding="utf-8").replace(
        '"type":"FeatureCollection"', '"type": "FeatureCollection"'
    )


def test_tiles_build_per_zoom(tiled_site):
    ws, _, said = tiled_site
    store = GeoPackageStore(ws)
    try:
        path = ws.with_suffix(".mbtiles")
        bounds = tiles.workspace_bounds(store)
        with sqlite3.connect(path) as db:
            meta = dict(db.execute("SELECT name, value FROM metadata"))
            per_zoom = dict(
                db.execute("SELECT zoom_level, count(*) FROM tiles GROUP BY zoom_level")
            )
            rows = db.execute("SELECT zoom_level, tile_column, tile_row FROM tiles").fetchall()
        assert (meta["minzoom"], meta["maxzoom"]) == ("10", "15")
        assert "zoom 15" in said and "tiles" in said  # progress per zoom
        for z in range(10, 16):  # at most the tiles over the city, at least one
            assert 1 <= per_zoom[z] <= len(list(tiles.tiles_covering(bounds, z))), z
        assert per_zoom[15] > per_zoom[12] >= per_zoom[10]
        grids = store.read("grids")
        n_buildings = len(store.read("buildings"))
        seen_grids, seen_buildings = set(), 0
        for z, x, row in rows:
            y = (1 << z) - 1 - row
            got = tiles.read_mbtiles(path, z, x, y)
            assert got == tiles.make_tile(store, z, x, y)  # the served tile, byte for byte
            data = mapbox_vector_tile.decode(got)
            assert ("grids" in data) == (z >= tiles.GRIDS_MINZOOM)
            assert ("buildings" in data) == (z >= tiles.BUILDINGS_MINZOOM)
            for f in data.get("grids", {}).get("features", []):
                p = f["properties"]
                assert {"grid_code", "community_code", "households", "kind"} <= set(p)
                if z == 15:
                    seen_grids.add(p["grid_code"])
            if z == 15:
                seen_buildings += len(data.get("buildings", {}).get("features", []))
            for f in data["communities"]["features"]:
                assert {"community_code", "name", "street_code"} <= set(f["properties"])
        assert seen_grids == set(grids["grid_code"])
        # the PMTiles archive holds the same tiles
        from pmtiles.reader import MmapSource, Reader

        with open(ws.parent / "city.pmtiles", "rb") as fh:
            reader = Reader(MmapSource(fh))
            assert reader.header()["max_zoom"] == 15
            for z, x, row in rows[:: max(1, len(rows) // 20)]:
                y = (1 << z) - 1 - row
                got = reader.get(z, x, y)
                assert gzip.decompress(got) == tiles.read_mbtiles(path, z, x, y)
        assert seen_buildings >= n_buildings  # every building, edge ones in two tiles
    finally:
        store.close()


def click_at(page, lon: float, lat: float) -> None:
    """A mouse click on the map at a lon/lat (through the page's Leaflet map)."""
    pt = page.evaluate(
        f"() => {{ var p = window.ggMap.latLngToContainerPoint([{lat}, {lon}]);"
        " return [p.x, p.y]; }"
    )
    box = page.query_selector("#map").bounding_box()
    page.mouse.click(box["x"] + pt[0], box["y"] + pt[1])


def loaded(page, level: str) -> None:
    page.wait_for_function(
        f"() => window.ggView && window.ggView.level === '{level}' && window.ggTilesLoaded",
        timeout=30000,
    )
    page.wait_for_timeout(300)  # the tiles' paths are drawn


def paths(page) -> int:
    return page.evaluate("() => document.querySelectorAll('.leaflet-tile path').length")


def test_tiled_pages_navigate_city_street_community_in_chromium(tiled_site, gridgis_serve):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ws, maps, _ = tiled_site
    layers = read_layers(ws)
    comms = layers["communities"]
    target = comms.iloc[len(comms) // 2]
    inside = target.geometry.representative_point()
    grid = layers["grids"][layers["grids"]["community_code"] == target["community_code"]].iloc[0]
    gpt = grid.geometry.representative_point()
    tile_answers: list[int] = []
    errors: list[str] = []
    with gridgis_serve(["--workspace", str(ws), "--maps", str(maps)]) as base:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1000, "height": 750})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "response",
                lambda r: tile_answers.append(r.status) if "/tiles/" in r.url else None,
            )
            page.goto(f"{base}/maps/")
            loaded(page, "city")
            n_city = paths(page)
            crumb_city = page.inner_text("#gg-crumb")
            click_at(page, inside.x, inside.y)  # a community at the city level: its street
            loaded(page, "street")
            street_view = page.evaluate("() => window.ggView.code")
            crumb_street = page.inner_text("#gg-crumb")
            click_at(page, inside.x, inside.y)  # the same community, now: its own view
            loaded(page, "community")
            comm_view = page.evaluate("() => window.ggView.code")
            click_at(page, gpt.x, gpt.y)  # a grid of it: its popup
            page.wait_for_selector(".leaflet-popup-content", timeout=10000)
            popup = page.inner_text(".leaflet-popup-content")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "tiled-community.png"))
            page.go_back()  # the browser's back button: the street again
            loaded(page, "street")
            # a forwarding street page opens the tile page on that street
            page.goto(f"{base}/maps/streets/{target['street_code']}.html")
            loaded(page, "street")
            forwarded = page.evaluate("() => window.ggView.code")
            # lookup: a click is answered by the server's /lookup/point, the grid outlined
            page.goto(f"{base}/maps/lookup.html")
            page.wait_for_function("() => window.ggTilesLoaded === true", timeout=30000)
            click_at(page, gpt.x, gpt.y)
            page.wait_for_function("() => window.ggLookup.done", timeout=30000)
            looked_up = page.evaluate("() => window.ggLookup.last")
            # the one board page, filled from /grids/<code>
            page.goto(f"{base}/maps/board.html#grid={grid['grid_code']}")
            page.wait_for_function("() => window.ggBoardDone === true", timeout=30000)
            board = page.inner_text(".sheet")
            browser.close()
    assert not errors, errors
    assert n_city > len(comms) // 2  # community fills and street outlines from the tiles
    assert 200 in tile_answers and all(s in (200, 204, 304) for s in tile_answers)
    assert "社区 " + str(len(comms)) in crumb_city
    assert street_view == target["street_code"] and target["street_code"] in crumb_street
    assert comm_view == target["community_code"]
    assert grid["grid_code"] in popup
    assert forwarded == target["street_code"]
    assert looked_up == grid["grid_code"]
    assert grid["grid_code"] in board and f"{int(grid['households']):,} 户" in board
    assert target["name"] in board  # the chain street › community from the index
