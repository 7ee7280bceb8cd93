"""Vector tiles (gridgis.tiles), their OGC API – Tiles endpoints, the MBTiles file and
the tile-based map page drawn by real Chromium from a real ``gridgis serve``.

Hand-made case: one grid filling exactly one tile decodes to the tile's four corners.
Demo city: the tile holding the whole 10,000-household city carries every grid with its
code and households; buildings only from ``BUILDINGS_MINZOOM``. Both stores: PostGIS
(``ST_AsMVT``) answers the same features as the GeoPackage (Python encoder).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import shapely

from gridgis import tiles
from gridgis.errors import InputError
from gridgis.store import GeoPackageStore, open_store

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts" / "maps"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def decode(tile: bytes) -> dict:
    return mapbox_vector_tile.decode(tile)


def to_lonlat_point(z: int, x: int, y: int, px: float, py: float) -> tuple[float, float]:
    """Tile coordinates (y up, as decode returns them) back to lon/lat."""
    minx, miny, maxx, maxy = tiles.tile_bounds_m(z, x, y)
    size = maxx - minx
    lon, lat = tiles.to_lonlat(
        np.array([minx + px / tiles.EXTENT * size]), np.array([miny + py / tiles.EXTENT * size])
    )
    return float(lon[0]), float(lat[0])


# -- hand-made ---------------------------------------------------------------------------


def one_grid_store(tmp_path, z=12, x=3400, y=1660):
    """A workspace with one grid whose outline is exactly tile z/x/y."""
    minx, miny, maxx, maxy = tiles.tile_bounds_m(z, x, y)
    lon, lat = tiles.to_lonlat(np.array([minx, maxx]), np.array([miny, maxy]))
    box = shapely.box(lon[0], lat[0], lon[1], lat[1])
    grids = gpd.GeoDataFrame(
        {
            "grid_code": ["320102001001001"],
            "kind": ["residential"],
            "households": [345],
            "flags": [""],
        },
        geometry=[box],
        crs="EPSG:4326",
    )
    store = GeoPackageStore(tmp_path / "one.gpkg")
    store.write("grids", grids)
    return store


def test_a_grid_filling_a_tile_decodes_to_its_corners(tmp_path):
    store = one_grid_store(tmp_path)
    data = decode(tiles.make_tile(store, 12, 3400, 1660))
    assert list(data) == ["grids"]
    (feat,) = data["grids"]["features"]
    assert feat["properties"] == {
        "grid_code": "320102001001001",
        "kind": "residential",
        "households": 345,
    }  # the empty flags text is left out
    ring = np.array(feat["geometry"]["coordinates"][0])
    assert feat["geometry"]["type"] == "Polygon"
    assert {tuple(p) for p in ring.tolist()} == {(0, 0), (4096, 0), (4096, 4096), (0, 4096)}
    # the neighbour to the east holds only the buffer strip: 64 units wide
    east = decode(tiles.make_tile(store, 12, 3401, 1660))
    ring = np.array(east["grids"]["features"][0]["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == -tiles.BUFFER and ring[:, 0].max() == 0
    # far away: nothing, and below the grids' first zoom: nothing
    assert tiles.make_tile(store, 12, 100, 100) == b""
    assert tiles.make_tile(store, 11, 1700, 830) == b""


def test_bad_and_out_of_range_tiles_are_typed_errors(tmp_path):
    store = one_grid_store(tmp_path)
    with pytest.raises(InputError):
        tiles.make_tile(store, -1, 0, 0)
    with pytest.raises(InputError):
        tiles.make_tile(store, 3, -1, 0)
    with pytest.raises(tiles.TileRangeError):
        tiles.make_tile(store, 3, 8, 0)
    with pytest.raises(tiles.TileRangeError):
        tiles.make_tile(store, tiles.MAX_ZOOM + 1, 0, 0)
    assert tiles.TileRangeError.http_status == 404 and InputError.http_status == 422


def test_tiles_covering_and_mercator_round_trip():
    assert list(tiles.tiles_covering((0.1, 0.1, 0.2, 0.2), 1)) == [(1, 0)]
    assert list(tiles.tiles_covering((-10, -10, 10, 10), 1)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    pts = np.array([[118.86, 32.09], [-73.98, 40.75]])
    m = tiles.to_mercator(pts)
    lon, lat = tiles.to_lonlat(m[:, 0], m[:, 1])
    np.testing.assert_allclose(np.column_stack([lon, lat]), pts, atol=1e-9)


# -- demo city ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def city_store(demo_delineated_gpkg):
    store = GeoPackageStore(demo_delineated_gpkg)
    yield store
    store.close()


def city_tile(store, z):
    bounds = tiles.workspace_bounds(store)
    xy = list(tiles.tiles_covering(bounds, z))
    return xy


def test_demo_city_tile_carries_every_grid_with_its_attributes(city_store):
    grids = city_store.read("grids")
    (xy,) = city_tile(city_store, 12)  # the whole demo city lies in one tile at zoom 12
    data = decode(tiles.make_tile(city_store, 12, *xy))
    assert set(data) == {"streets", "communities", "grids"}  # no facilities, no buildings
    feats = data["grids"]["features"]
    got = {f["properties"]["grid_code"]: f["properties"] for f in feats}
    assert set(got) == set(grids["grid_code"])
    for _, g in grids.iterrows():
        p = got[g["grid_code"]]
        assert p["households"] == int(g["households"])
        assert p["kind"] == g["kind"]
        assert p["community_code"] == g["community_code"]
    assert len(data["communities"]["features"]) == len(city_store.read("communities"))
    # each decoded grid lies where the stored grid is
    for f in feats[:10]:
        shape = shapely.geometry.shape(f["geometry"])
        pt = shape.representative_point()
        lon, lat = to_lonlat_point(12, *xy, pt.x, pt.y)
        stored = grids.loc[grids["grid_code"] == f["properties"]["grid_code"], "geometry"]
        assert stored.iloc[0].buffer(1e-4).contains(shapely.Point(lon, lat))


def test_buildings_only_at_high_zoom(city_store):
    z = tiles.BUILDINGS_MINZOOM
    layers_low, layers_high = set(), set()
    for xy in city_tile(city_store, z - 1):
        layers_low |= set(decode(tiles.make_tile(city_store, z - 1, *xy)) or {})
    n_buildings = 0
    for xy in city_tile(city_store, z):
        data = decode(tiles.make_tile(city_store, z, *xy) or b"")
        layers_high |= set(data)
        n_buildings += len(data.get("buildings", {}).get("features", []))
    assert "buildings" not in layers_low and "facilities" in layers_low
    assert "buildings" in layers_high
    # every building appears at least once (those on tile edges in two tiles)
    assert n_buildings >= len(city_store.read("buildings"))


def test_mbtiles_holds_the_served_tiles(city_store, tmp_path):
    path = tmp_path / "city.mbtiles"
    n = tiles.build_mbtiles(city_store, path, 11, 13)
    assert n >= 3
    with sqlite3.connect(path) as db:
        meta = dict(db.execute("SELECT name, value FROM metadata"))
        rows = db.execute("SELECT count(*) FROM tiles").fetchone()[0]
    assert meta["format"] == "pbf" and meta["minzoom"] == "11" and rows == n
    (xy,) = city_tile(city_store, 12)
    assert tiles.read_mbtiles(path, 12, *xy) == tiles.make_tile(city_store, 12, *xy)
    assert tiles.read_mbtiles(path, 12, 0, 0) is None
    with pytest.raises(InputError):
        tiles.build_mbtiles(city_store, path, 5, 3)


def test_postgis_tile_has_the_same_features(city_store):
    pg = open_store(fresh_pg_url())
    try:
        pg.write_many({n: city_store.read(n) for n in ("grids", "communities", "streets")})
        (xy,) = city_tile(city_store, 12)
        a = decode(tiles.make_tile(city_store, 12, *xy))
        b = decode(tiles.make_tile(pg, 12, *xy))
        assert set(a) == set(b)
        for layer in a:
            key = tiles.TILE_LAYERS[layer].fields[0]
            pa = {f["properties"][key]: f["properties"] for f in a[layer]["features"]}
            pb = {f["properties"][key]: f["properties"] for f in b[layer]["features"]}
            for k in pa:
                assert pa[k] == pb[k], (pa[k], pb[k])
    finally:
        pg.close()


# -- API ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(city_store):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(city_store)) as c:
        yield c


def test_api_tile_content_type_and_cache(client, city_store):
    (x, y) = city_tile(city_store, 12)[0]
    r = client.get(f"/tiles/WebMercatorQuad/12/{y}/{x}")  # OGC order: zoom/row/column
    assert r.status_code == 200
    assert r.headers["content-type"] == tiles.MEDIA_TYPE
    assert "max-age" in r.headers["cache-control"]
    assert "grids" in decode(r.content)
    again = client.get(
        f"/tiles/WebMercatorQuad/12/{y}/{x}", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    r = client.get(f"/collections/grids/tiles/WebMercatorQuad/12/{y}/{x}")
    assert set(decode(r.content)) == {"grids"}
    assert r.headers["etag"] != again.headers["etag"]  # another layer, another version


def test_api_empty_unknown_and_bad_tiles(client):
    assert client.get("/tiles/WebMercatorQuad/12/0/0").status_code == 204
    assert client.get("/tiles/WebMercatorQuad/23/0/0").status_code == 404
    assert client.get("/tiles/WebMercatorQuad/2/0/4").status_code == 404
    assert client.get("/collections/nope/tiles/WebMercatorQuad/2/0/0").status_code == 404
    assert client.get("/collections/staff/tiles/WebMercatorQuad/2/0/0").status_code == 404
    for bad in ("-1/0/0", "2/-1/0", "x/0/0", "2/0/1.5", "99999999999999999999999/0/0"):
        r = client.get(f"/tiles/WebMercatorQuad/{bad}")
        assert 400 <= r.status_code < 500, (bad, r.status_code)


def test_api_tileset_documents(client):
    ts = client.get("/tiles").json()["tilesets"]
    assert ts[0]["links"][0]["type"] == tiles.MEDIA_TYPE
    one = client.get("/tiles/WebMercatorQuad").json()
    assert {lay["id"] for lay in one["layers"]} >= {"grids", "communities", "streets"}
    tms = client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert len(tms["tileMatrices"]) == tiles.MAX_ZOOM + 1
    assert tms["tileMatrices"][3]["matrixWidth"] == 8


# -- the tile page in Chromium, served by gridgis serve ----------------------------------


def fresh_pg_url() -> str:
    """A new empty PostGIS workspace; skips when PostgreSQL is not installed."""
    from gridgis.store.pgtemp import PostgresUnavailable, find_bindir, fresh_workspace_url

    if not os.environ.get("GRIDGIS_TEST_DATABASE_URL"):
        try:
            find_bindir()
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL not installed: {exc}")
    return fresh_workspace_url()


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served_maps(request, demo_delineated_gpkg, tmp_path_factory, gridgis_serve):
    from gridgis.maps import write_maps
    from gridgis.maps.site import MAP_LAYERS
    from gridgis.standards import DEFAULT

    folder = tmp_path_factory.mktemp("tiled")
    ws = folder / "city.gpkg"
    shutil.copy(demo_delineated_gpkg, ws)
    store = GeoPackageStore(ws)
    layers = {n: store.read(n) for n in MAP_LAYERS if store.has(n)}
    store.close()
    settings = DEFAULT.override({"maps.tiles_above_grids": 0})
    site = write_maps(layers, folder / "maps", settings=settings, boards=False, city="示范区")
    assert (folder / "maps" / "tiles.html") in site.pages
    small = write_maps(layers, folder / "small", boards=False)  # default threshold: no page
    assert not (folder / "small" / "tiles.html").exists() and small.pages
    target = ["--workspace", str(ws)]
    if request.param == "postgis":
        url = fresh_pg_url()
        pg = open_store(url)
        pg.write_many(layers)
        pg.close()
        target = ["--database", url]
    with gridgis_serve([*target, "--maps", str(folder / "maps")]) as base:
        yield base, request.param


def test_tile_page_draws_grids_in_chromium(served_maps, demo_delineated_gpkg):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    store = GeoPackageStore(demo_delineated_gpkg, create=False)
    grids, comms = store.read("grids"), store.read("communities")
    store.close()
    # the street view (grids drawn there, not at the city level) of the street with most grids
    per_street = grids["community_code"].map(
        dict(zip(comms["community_code"], comms["street_code"], strict=True))
    )
    street, n_grids = per_street.value_counts().index[0], int(per_street.value_counts().iloc[0])
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 850})
        errors: list[str] = []
        tile_answers: list[int] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "response",
            lambda r: tile_answers.append(r.status) if "/tiles/WebMercatorQuad/" in r.url else None,
        )
        page.goto(f"{served_maps[0]}/maps/tiles.html#street={street}")
        page.wait_for_function(
            "() => window.ggTilesLoaded === true", timeout=30000
        )  # every visible tile answered and drawn
        n_paths = page.evaluate("() => document.querySelectorAll('.leaflet-tile path').length")
        fills = page.evaluate(
            "() => Array.from(document.querySelectorAll('.leaflet-tile path'))"
            ".map(p => p.getAttribute('fill')).filter(f => f && f !== 'none')"
        )
        legend = page.inner_text(".leaflet-bottom.leaflet-right")
        page.click("input[data-layer=grids]")  # the layer switch hides the grids
        page.wait_for_function("() => window.ggTilesLoaded === true", timeout=30000)
        n_without = page.evaluate("() => document.querySelectorAll('.leaflet-tile path').length")
        page.click("input[data-layer=grids]")
        page.wait_for_function("() => window.ggTilesLoaded === true", timeout=30000)
        page.wait_for_timeout(400)
        n_back = page.evaluate("() => document.querySelectorAll('.leaflet-tile path').length")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(400)  # Leaflet fades new tiles in over 200 ms
        page.screenshot(path=str(ARTIFACTS / f"tiles-{served_maps[1]}.png"))
        browser.close()
    assert not errors, errors
    assert n_paths > 20 and 200 in tile_answers
    # the street's grids, some drawn in two tiles; all back when switched on again
    assert n_without <= n_paths - n_grids and n_back == n_paths, (n_paths, n_without, n_back)
    assert all(s in (200, 204, 304) for s in tile_answers), sorted(set(tile_answers))
    assert any(f.startswith("#f") or f.startswith("#e") or f.startswith("#b") for f in fills)
    assert "网格户数" in legend


class ReadOnlyStore(GeoPackageStore):
    """A GeoPackage store without the serving path, as a store that only implements
    :meth:`read` is (the base class's ``read_page_geojson`` answers None)."""

    def read_page_geojson(self, *args, **kwargs):
        return None


@pytest.mark.parametrize("kind", ["parquet", "read-only"])
def test_other_stores_give_the_same_tile(city_store, demo_delineated_gpkg, tmp_path, kind):
    if kind == "parquet":
        other = open_store(tmp_path / "city.parquet")
        other.write_many({n: city_store.read(n) for n in ("grids", "communities", "streets")})
    else:
        other = ReadOnlyStore(demo_delineated_gpkg, create=False)
    try:
        (xy,) = city_tile(city_store, 13)
        a = decode(tiles.make_tile(city_store, 13, *xy, ["grids", "communities", "streets"]))
        b = decode(tiles.make_tile(other, 13, *xy, ["grids", "communities", "streets"]))
        for layer in ("grids", "communities", "streets"):
            key = tiles.TILE_LAYERS[layer].fields[0]
            fa = {f["properties"][key]: f for f in a[layer]["features"]}
            fb = {f["properties"][key]: f for f in b[layer]["features"]}
            assert fa == fb  # the same attributes and the same tile coordinates
    finally:
        other.close()


def test_api_serves_a_fresh_mbtiles_and_ignores_a_stale_one(demo_delineated_gpkg, tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app

    ws = tmp_path / "city.gpkg"
    shutil.copy(demo_delineated_gpkg, ws)
    store = GeoPackageStore(ws)
    (x, y) = city_tile(store, 12)[0]
    tiles.build_mbtiles(store, tmp_path / "city.mbtiles", 12, 12)
    # a marker tile: the server must answer from the file while it is fresh
    with sqlite3.connect(tmp_path / "city.mbtiles") as db:
        db.execute("UPDATE tiles SET tile_data = ?", (b"marker",))
    with TestClient(create_app(store)) as c:
        assert c.get(f"/tiles/WebMercatorQuad/12/{y}/{x}").content == b"marker"
        assert "grids" in decode(c.get(f"/tiles/WebMercatorQuad/13/{2 * y}/{2 * x}").content)
        grids = store.read("grids")
        store.write("grids", grids.iloc[:5])  # the workspace changes: the file is stale
        data = decode(c.get(f"/tiles/WebMercatorQuad/12/{y}/{x}").content)
        assert len(data["grids"]["features"]) == 5
    store.close()


def test_landing_and_conformance_list_the_tiles(client):
    conf = client.get("/conformance").json()["conformsTo"]
    for cls in ("core", "tileset", "tilesets-list", "dataset-tilesets", "mvt"):
        assert f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{cls}" in conf
    links = {lk["rel"]: lk["href"] for lk in client.get("/").json()["links"]}
    tilesets = links["http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"]
    assert tilesets.endswith("/tiles")
    path = tilesets.split("testserver", 1)[-1]
    assert client.get(path).json()["tilesets"][0]["dataType"] == "vector"
    scheme = links["http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"]
    assert client.get(scheme.split("testserver", 1)[-1]).json()["id"] == "WebMercatorQuad"
