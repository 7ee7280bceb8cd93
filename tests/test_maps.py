"""Map pages: built from the demo city through the real pipeline (delineate, assign,
coverage), checked offline in real headless Chromium (Debian's /usr/bin/chromium driven
by playwright). Screenshots go to tests/artifacts/maps/."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgis.crs import metric_crs_for, wgs84_to_gcj02
from gridgis.maps import address_key, external_urls, inline_assets, prepare, write_maps
from gridgis.maps.common import DECLUTTER_GAP_PX, JS_ASSETS
from gridgis.standards import DEFAULT

ARTIFACTS = Path(__file__).parent / "artifacts" / "maps"
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


# --------------------------------------------------------------------------------------
# Fixtures: one small city through the pipeline, one written site, one browser
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def city_layers() -> dict:
    from gridgis.assign import assign_all
    from gridgis.coverage import run_coverage
    from gridgis.delineate import delineate
    from gridgis.synth import make_city

    city = make_city(households=10_000, seed=7)
    layers = dict(city.layers)
    d = delineate(layers, DEFAULT)
    layers["grids"] = d.grids
    layers["buildings"] = d.buildings
    # one grid head and one grid worker per grid (the demo city has community staff only)
    codes = d.grids["grid_code"].astype(str).tolist()
    grid_staff = pd.DataFrame(
        {
            "staff_id": [f"G{i:06d}" for i in range(2 * len(codes))],
            "name": [f"网格长{i}" for i in range(len(codes))]
            + [f"网格员{i}" for i in range(len(codes))],
            "role": ["grid_head"] * len(codes) + ["grid_worker"] * len(codes),
            "community_code": [c[:12] for c in codes] * 2,
            "grid_code": codes * 2,
        }
    )
    layers["staff"] = pd.concat([layers["staff"], grid_staff], ignore_index=True)
    a = assign_all(layers, d.grids, DEFAULT)
    layers.update({k: v for k, v in a.layers().items() if k != "assign_rejects"})
    cov = run_coverage(layers, DEFAULT)
    layers.update(cov.layers)
    from gridgis.siting import site_from_layers

    layers["proposed_sites"] = site_from_layers(layers, "kindergarten", 2, DEFAULT).sites
    layers["meta_city"] = city.meta["city"]
    return layers


@pytest.fixture(scope="session")
def site(city_layers, tmp_path_factory):
    layers = {k: v for k, v in city_layers.items() if k != "meta_city"}
    out = tmp_path_factory.mktemp("maps")
    return write_maps(layers, out, basemap="none", city="示范区")


@pytest.fixture(scope="module")  # closed with the module: one sync Playwright at a time
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A browser page that records console errors and every non-local request."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1200, "height": 850})
        self.errors: list[str] = []
        self.external: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "request",
            lambda r: (
                self.external.append(r.url)
                if not r.url.startswith(("file:", "data:", "about:"))
                else None
            ),
        )

    def open(self, path: Path, shot: str | None = None):
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")
        self.page.wait_for_timeout(200)
        if shot:
            self.page.screenshot(path=str(ARTIFACTS / f"{shot}.png"))
        return self.page

    def close(self):
        self.page.close()


def unescape_js(text: str) -> str:
    """Page text with JSON ``\\uXXXX`` escapes decoded (folium's tojson escapes CJK)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def leaflet_map_js() -> str:
    """JS expression: the page's folium map object."""
    return (
        "(() => { for (const k of Object.keys(window)) { try { if (window[k] instanceof "
        "L.Map) return window[k]; } catch (e) {} } return null; })()"
    )


def layer_names(page) -> list[str]:
    """Names in the page's layer control."""
    return page.evaluate("""() => Array.from(
        document.querySelectorAll('.leaflet-control-layers label span span, '
                                  + '.leaflet-control-layers label > span > span'))
        .map(s => s.textContent.trim()).filter((v, i, a) => a.indexOf(v) === i)""")


def click_lonlat(page, lon: float, lat: float) -> None:
    """Click the map at a lon/lat (converted to a pixel by the page's own map)."""
    xy = page.evaluate(f"""() => {{ const m = {leaflet_map_js()};
        const p = m.latLngToContainerPoint([{lat}, {lon}]);
        const r = m.getContainer().getBoundingClientRect();
        return [p.x + r.left, p.y + r.top]; }}""")
    page.mouse.click(xy[0], xy[1])
    page.wait_for_timeout(150)


# --------------------------------------------------------------------------------------
# Site content (no browser)
# --------------------------------------------------------------------------------------


def test_site_has_every_page(site, city_layers):
    grids = city_layers["grids"]
    out = site.out_dir
    assert (out / "index.html").exists() and (out / "coverage.html").exists()
    assert (out / "lookup.html").exists()
    for code in city_layers["streets"]["street_code"].astype(str):
        assert (out / "streets" / f"{code}.html").exists()
    for code in city_layers["communities"]["community_code"].astype(str):
        assert (out / "communities" / f"{code}.html").exists()
    boards = sorted(p.stem for p in (out / "boards").glob("*.html"))
    assert boards == sorted(grids["grid_code"].astype(str))


def test_pages_reference_only_local_assets(site):
    for page in site.pages:
        text = page.read_text(encoding="utf-8")
        assert external_urls(text) == [], page
        assert "cdn" not in " ".join(re.findall(r'(?:src|href)="([^"]+)"', text)).lower()
        for ref in re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', text):
            if not ref.startswith("data:"):
                assert (page.parent / ref).resolve().exists(), (page, ref)


def test_tile_basemaps_only_add_tiles(city_layers, tmp_path):
    from gridgis.maps.common import new_map, render_page

    bounds = city_layers["communities"].total_bounds
    page = render_page(new_map(bounds, "osm"))
    assert "tile.openstreetmap.org" in page and external_urls(page) == []
    page = render_page(new_map(bounds, "tianditu", tianditu_key="abc123"))
    assert "tianditu.gov.cn" in page and "tk=abc123" in page
    with pytest.raises(ValueError, match="tianditu_key"):
        new_map(bounds, "tianditu")
    with pytest.raises(ValueError, match="base map"):
        new_map(bounds, "google")


def test_amap_shifts_overlays_to_gcj02(city_layers):
    grids = city_layers["grids"]
    shifted = prepare(grids, 0.0, "amap")
    plain = prepare(grids, 0.0, "none")
    x, y = shapely.get_coordinates(plain.geometry.values).T
    gx, gy = wgs84_to_gcj02(x, y)
    sx, sy = shapely.get_coordinates(shifted.geometry.values).T
    assert np.allclose(sx, np.round(gx, 6), atol=2e-6) and np.allclose(
        sy, np.round(gy, 6), atol=2e-6
    )
    # the GCJ-02 offset is hundreds of metres: drawing WGS84 over Amap tiles would be wrong
    metric = metric_crs_for(grids)
    a = plain.geometry.to_crs(metric).centroid
    b = shifted.geometry.to_crs(metric).centroid
    assert 100 < float(a.distance(b).median()) < 1000


def test_simplified_levels_still_tile(city_layers):
    comms = city_layers["communities"]
    metric = metric_crs_for(comms)
    simple = prepare(comms, 12.0, "none", coverage=True).to_crs(metric)
    orig = comms.to_crs(metric)
    union_orig = shapely.union_all(orig.geometry.values)
    pairs = simple.sindex.query(simple.geometry.values, predicate="intersects")
    pairs = pairs[:, pairs[0] < pairs[1]]
    overlap = shapely.area(
        shapely.intersection(simple.geometry.values[pairs[0]], simple.geometry.values[pairs[1]])
    ).sum()
    assert overlap < 1.0  # m²: shared edges stay shared
    diff = shapely.symmetric_difference(shapely.union_all(simple.geometry.values), union_orig)
    assert shapely.area(diff) / union_orig.area < 0.01
    coords = shapely.get_coordinates(prepare(comms, 12.0, "none", coverage=True).geometry.values)
    assert np.allclose(coords, np.round(coords, 6))


def test_address_key_matches_page_rule():
    assert address_key(" 幸明路５号（北门） ") == "幸明路5号北门"
    assert address_key("ＡＢＣ路12号") == "abc路12号"


def test_inline_assets_make_one_self_contained_page(site):
    text = (site.out_dir / "index.html").read_text(encoding="utf-8")
    inlined = inline_assets(text, "static/")
    assert "static/" not in inlined
    assert len(inlined) > len(text) + 100_000  # Leaflet itself is in the page now
    assert external_urls(inlined) == []


def test_board_content(site, city_layers):
    grids = city_layers["grids"]
    row = grids[grids["kind"] == "residential"].iloc[0]
    text = (site.out_dir / "boards" / f"{row['grid_code']}.html").read_text(encoding="utf-8")
    assert "size: A4" in text and str(row["grid_code"]) in text
    assert f"{int(row['households']):,} 户" in text
    staff = city_layers["staff"]
    mine = staff[staff["grid_code"].astype("string") == row["grid_code"]]
    for name in mine["name"]:
        assert name in text
    assert "网格长" in text and "网格员" in text
    for phone in staff["phone"].dropna().astype(str):
        assert phone not in text  # personal data stays out of public boards


def test_coverage_page_without_coverage_layers_says_so(city_layers, tmp_path):
    layers = {
        k: v
        for k, v in city_layers.items()
        if k not in ("access", "coverage", "coverage_gaps", "proposed_sites", "meta_city")
    }
    s = write_maps(layers, tmp_path, boards=False)
    text = unescape_js((tmp_path / "coverage.html").read_text(encoding="utf-8"))
    assert "缺少图层" in text and "access" in text
    assert "先运行 gridgis coverage / gridgis site" in text
    assert any("absent" in n for n in s.notes)
    # only the sites missing: the page names the command that writes them
    layers = {k: v for k, v in city_layers.items() if k not in ("proposed_sites", "meta_city")}
    write_maps(layers, tmp_path / "sites", boards=False)
    text = unescape_js((tmp_path / "sites" / "coverage.html").read_text(encoding="utf-8"))
    assert "先运行 gridgis site)" in text and "gridgis coverage" not in text


def test_missing_required_layer_is_a_clear_error(city_layers, tmp_path):
    with pytest.raises(ValueError, match="communities"):
        write_maps({"streets": city_layers["streets"]}, tmp_path)


@pytest.fixture(scope="session")
def workspace(city_layers, tmp_path_factory) -> Path:
    from gridgis.store import GeoPackageStore

    ws = tmp_path_factory.mktemp("ws") / "ws.gpkg"
    keep = (
        "streets",
        "communities",
        "grids",
        "buildings",
        "roads",
        "facilities",
        "green_spaces",
        "addresses",
        "staff",
        "coverage_gaps",
    )
    GeoPackageStore(ws).write_many({k: city_layers[k] for k in keep}, params={"test": True})
    return ws


def test_cli_map(workspace, tmp_path):
    from typer.testing import CliRunner

    from gridgis.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["map", "--workspace", str(workspace), "--out", str(tmp_path / "m"), "--no-boards"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "index.html").exists()
    assert (tmp_path / "m" / "static" / "leaflet" / "leaflet.js").exists()
    assert not list((tmp_path / "m" / "boards").glob("*.html"))
    res = runner.invoke(
        app,
        ["map", "--workspace", str(workspace), "--out", str(tmp_path / "m"), "--basemap", "google"],
    )
    assert res.exit_code != 0 and "basemap" in res.output
    res = runner.invoke(
        app,
        [
            "map",
            "--workspace",
            str(workspace),
            "--out",
            str(tmp_path / "m"),
            "--basemap",
            "tianditu",
        ],
        env={"TIANDITU_KEY": ""},
    )
    assert res.exit_code != 0 and "tianditu-key" in res.output
    res = runner.invoke(app, ["map", "--workspace", str(tmp_path / "absent.gpkg")])
    assert res.exit_code != 0
    # Amap: overlays shifted into GCJ-02 in the written page
    res = runner.invoke(
        app,
        [
            "map",
            "--workspace",
            str(workspace),
            "--out",
            str(tmp_path / "amap"),
            "--basemap",
            "amap",
            "--no-boards",
        ],
    )
    assert res.exit_code == 0, res.output
    page = (tmp_path / "amap" / "index.html").read_text(encoding="utf-8")
    assert "autonavi.com" in page and external_urls(page) == []


# --------------------------------------------------------------------------------------
# In Chromium
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def visited(site, browser, city_layers) -> dict[str, dict]:
    """Open every kind of page once: console errors, non-local requests, the layer
    control's names; a screenshot of each under tests/artifacts/maps/."""
    grids = city_layers["grids"]
    street = str(city_layers["streets"]["street_code"].iloc[0])
    comm = str(city_layers["communities"]["community_code"].iloc[0])
    pages = {
        "index": "index.html",
        "street": f"streets/{street}.html",
        "community": f"communities/{comm}.html",
        "coverage": "coverage.html",
        "lookup": "lookup.html",
        "board": f"boards/{grids['grid_code'].iloc[3]}.html",
    }
    out = {}
    p = Page(browser)
    try:
        for shot, rel in pages.items():
            page = p.open(site.out_dir / rel, shot)
            out[shot] = {
                "rel": rel,
                "leaflet": page.evaluate("typeof L"),
                "errors": list(p.errors),
                "external": list(p.external),
                "names": layer_names(page),
            }
            p.errors.clear()
            p.external.clear()
    finally:
        p.close()
    return out


def test_every_page_loads_offline_without_errors(visited):
    assert len(visited) == 6
    for v in visited.values():
        assert v["leaflet"] == "object", v["rel"]
        assert v["errors"] == [], (v["rel"], v["errors"])
        assert v["external"] == [], (v["rel"], v["external"])


def test_expected_layers(visited):
    assert {"社区 (户数分级)", "街道边界", "街道名称", "社区名称"} <= set(visited["index"]["names"])
    assert {"网格 (户数分级)", "网格代码 (标注)", "社区边界"} <= set(visited["street"]["names"])
    assert {"网格", "网格代码 (标注)", "建筑 (户数)", "道路", "社区边界"} <= set(
        visited["community"]["names"]
    )
    names = visited["coverage"]["names"]
    assert any(n.endswith("未覆盖建筑") for n in names)
    assert any(n.endswith("已覆盖建筑") for n in names)
    assert any(n.endswith("覆盖缺口") for n in names)
    assert any("直线半径" in n for n in names)  # the radius circles (an optional layer)
    assert "幼儿园: 建议选址" in names


def test_facility_categories_are_toggleable_layers(site, browser, city_layers):
    comm = str(city_layers["communities"]["community_code"].iloc[0])
    f = city_layers["facilities"]
    cats = set(f.loc[f["community_code"].astype("string") == comm, "category"])
    p = Page(browser)
    try:
        page = p.open(site.out_dir / "communities" / f"{comm}.html")
        names = layer_names(page)
        facility_layers = [n for n in names if n.startswith("设施: ")]
        assert len(facility_layers) == len(cats) > 3
        count = f"() => {{ let n = 0; {leaflet_map_js()}.eachLayer(() => n++); return n; }}"
        n_before = page.evaluate(count)
        page.locator(".leaflet-control-layers").hover()
        page.get_by_text(facility_layers[0], exact=True).click()
        assert page.evaluate(count) < n_before
        assert p.errors == []
    finally:
        p.close()


def test_clicking_a_grid_opens_its_popup(site, browser, city_layers):
    grids = city_layers["grids"]
    street = str(city_layers["streets"]["street_code"].iloc[0])
    mine = grids[grids["grid_code"].astype(str).str[:9] == street]
    # a point deep inside a grid (inner buffer), checked against the unsimplified polygons
    metric = metric_crs_for(mine)
    inner = mine.to_crs(metric).buffer(-15).to_crs(4326)
    pick = mine.iloc[int(np.argmax(inner.to_crs(metric).area.to_numpy()))]
    pt = shapely.point_on_surface(inner.loc[pick.name])
    assert shapely.contains(pick.geometry, pt)
    p = Page(browser)
    try:
        page = p.open(site.out_dir / "streets" / f"{street}.html")
        click_lonlat(page, pt.x, pt.y)
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=3000)
        text = popup.inner_text()
        assert str(pick["grid_code"]) in text
        assert f"{int(pick['households'])}" in text.replace(",", "")
        page.screenshot(path=str(ARTIFACTS / "street_popup.png"))
    finally:
        p.close()


def test_lookup_finds_the_grid_of_an_address_in_file_mode(site, browser, city_layers):
    grids = city_layers["grids"]
    addr = city_layers["addresses"]
    # the expected grid, computed independently (point in the unsimplified polygons)
    inside = gpd.sjoin(
        addr[["text", "geometry"]], grids[["grid_code", "geometry"]], predicate="within"
    )
    inside = inside[~inside.index.duplicated(keep=False)]
    row = inside.iloc[len(inside) // 2]
    p = Page(browser)
    try:
        page = p.open(site.out_dir / "lookup.html")
        page.fill("#gg-q", str(row["text"]))
        page.click("#gg-go")
        page.locator("#gg-grid-code").wait_for(timeout=3000)
        assert page.inner_text("#gg-grid-code") == row["grid_code"]
        assert page.evaluate("window.ggLookup.mode") == "file"
        result = page.inner_text("#gg-result")
        comm = city_layers["communities"].set_index("community_code").loc[row["grid_code"][:12]]
        assert comm["name"] in result and row["grid_code"][:12] in result
        assert f"网格长{list(grids['grid_code']).index(row['grid_code'])}" in result
        page.screenshot(path=str(ARTIFACTS / "lookup_address.png"))
        # the same address typed with full-width digits and spaces
        fw = str(row["text"]).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        page.fill("#gg-q", " " + fw + " ")
        page.press("#gg-q", "Enter")
        page.wait_for_timeout(200)
        assert page.inner_text("#gg-grid-code") == row["grid_code"]
        # click the map: point in polygon in the page
        metric = metric_crs_for(grids)
        g = grids.iloc[len(grids) // 2]
        pt = shapely.point_on_surface(
            gpd.GeoSeries([g.geometry], crs=4326).to_crs(metric).buffer(-15).to_crs(4326).iloc[0]
        )
        click_lonlat(page, pt.x, pt.y)
        assert page.inner_text("#gg-grid-code") == g["grid_code"]
        assert p.errors == []
    finally:
        p.close()


def test_board_prints_on_one_a4_page(site, browser, city_layers):
    code = str(city_layers["grids"]["grid_code"].iloc[-1])
    p = Page(browser)
    try:
        page = p.open(site.out_dir / "boards" / f"{code}.html", "board")
        pdf = page.pdf(prefer_css_page_size=True, print_background=True)
        (ARTIFACTS / "board.pdf").write_bytes(pdf)
        pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        assert pages == 1
        box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)", pdf)
        w, h = float(box.group(1)), float(box.group(2))
        assert abs(w - 595.3) < 2 and abs(h - 841.9) < 2  # A4 in points
        assert page.inner_text("#grid-code").endswith(code)
        assert p.errors == []
    finally:
        p.close()


def test_js_assets_are_shipped():
    from gridgis.maps.common import STATIC_DIR

    for _, rel in JS_ASSETS:
        text = (STATIC_DIR / rel).read_text(encoding="utf-8")
        assert len(text) > 1000 and "sourceMappingURL" not in text


def test_lookup_through_the_api_when_served(site, workspace, browser, city_layers):
    create_app = pytest.importorskip("api.app").create_app
    import socket
    import threading
    import time

    import uvicorn

    from gridgis.store import GeoPackageStore

    app = create_app(GeoPackageStore(workspace), maps_dir=site.out_dir)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    p = Page(browser)
    try:
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        assert server.started
        grids = city_layers["grids"]
        inside = gpd.sjoin(
            city_layers["addresses"][["text", "geometry"]],
            grids[["grid_code", "geometry"]],
            predicate="within",
        )
        inside = inside[~inside.index.duplicated(keep=False)]
        row = inside.iloc[len(inside) // 3]
        page = p.page
        api_calls: list[str] = []
        page.on("request", lambda r: api_calls.append(r.url) if "/lookup/" in r.url else None)
        page.goto(f"http://127.0.0.1:{port}/maps/lookup.html")
        page.fill("#gg-q", str(row["text"]))
        page.click("#gg-go")
        page.wait_for_function("window.ggLookup.last !== null", timeout=5000)
        assert any("/lookup/address?q=" in u for u in api_calls)
        assert page.evaluate("window.ggLookup.mode") == "api"
        assert page.inner_text("#gg-grid-code") == row["grid_code"]
        page.screenshot(path=str(ARTIFACTS / "lookup_served.png"))
        assert p.errors == []
        assert all(u.startswith(f"http://127.0.0.1:{port}/") for u in p.external)
    finally:
        p.close()
        server.should_exit = True
        thread.join(timeout=10)


def test_coverage_category_switch(site, browser, city_layers):
    access = city_layers["access"]
    p = Page(browser)
    try:
        page = p.open(site.out_dir / "coverage.html")
        options = page.eval_on_selector_all("#gg-category option", "os => os.map(o => o.value)")
        assert set(options) <= set(access["category"].astype(str)) and len(options) > 5
        shown = f"""cat => {{ const m = {leaflet_map_js()};
            return window.ggCoverageSwitch.groups[cat].map(l => m.hasLayer(l)); }}"""
        first, other = options[1], options[-1]
        page.select_option("#gg-category", other)
        assert all(page.evaluate(shown, other)) and not any(page.evaluate(shown, first))
        page.select_option("#gg-category", first)
        assert all(page.evaluate(shown, first)) and not any(page.evaluate(shown, other))
        # the uncovered buildings drawn are the access rows not covered, one marker each
        uncovered = int(
            (~access.loc[access["category"] == first, "covered"].fillna(False).astype(bool)).sum()
        )
        drawn = page.evaluate(
            """cat => { const g = window.ggCoverageSwitch.groups[cat][0];
            let n = 0; g.eachLayer(() => n++); return n; }""",
            first,
        )
        assert drawn == uncovered
        assert p.errors == []
    finally:
        p.close()


# --------------------------------------------------------------------------------------
# Label decluttering (crowded street pages)
# --------------------------------------------------------------------------------------

N_FLAGGED = 3  # smallest grids of the crowded street, flagged out of range


@pytest.fixture(scope="session")
def crowded(tmp_path_factory) -> dict:
    """The default-size demo city (30,000 households) delineated, its smallest grids of
    the street with most grids flagged out of range, maps written (no boards)."""
    from gridgis.delineate import delineate
    from gridgis.synth import make_city

    city = make_city(households=30_000, seed=7)
    grids = delineate(dict(city.layers), DEFAULT).grids.copy()
    codes = grids["grid_code"].astype(str)
    street = codes.str[:9].value_counts().index[0]
    mine = grids[codes.str[:9] == street]
    area = mine.to_crs(metric_crs_for(mine)).area
    flagged = area.nsmallest(N_FLAGGED).index
    grids.loc[flagged, "flags"] = "above_max: 520 households, no valid partition found"
    out = tmp_path_factory.mktemp("crowded")
    write_maps(
        {
            "streets": city.layers["streets"],
            "communities": city.layers["communities"],
            "grids": grids,
        },
        out,
        boards=False,
    )
    mine = grids[codes.str[:9] == street]
    info = pd.DataFrame(
        {
            "area": mine.to_crs(metric_crs_for(mine)).area.to_numpy(),
            "flagged": mine.index.isin(flagged),
        },
        index=mine["grid_code"].astype(str).str[9:12]
        + "-"
        + mine["grid_code"].astype(str).str[-3:],
    )
    assert info.index.is_unique  # a street page's label names its grid
    return {"page": out / "streets" / f"{street}.html", "grids": info}


def grid_labels(page) -> list[dict]:
    """Every grid label of a page in DOM order (= priority order): its text, whether it is
    visible, its screen box and whether its anchor is inside the map view."""
    return page.evaluate(f"""() => {{ const m = {leaflet_map_js()};
        const view = m.getContainer().getBoundingClientRect();
        return Array.from(document.querySelectorAll('.gg-label.gg-grid')).map(el => {{
            const r = el.firstChild.getBoundingClientRect();
            const a = el.getBoundingClientRect();  // the marker's anchor is its top-left
            const st = getComputedStyle(el);
            return {{text: el.textContent, box: [r.left, r.top, r.right, r.bottom],
                     visible: st.visibility !== 'hidden' && st.display !== 'none',
                     in_view: a.left >= view.left && a.left <= view.right
                              && a.top >= view.top && a.top <= view.bottom}}; }}); }}""")


def boxes_meet(a: list[float], b: list[float], gap: float = 0.0) -> bool:
    """Screen boxes [left, top, right, bottom] intersect (closer than ``gap`` pixels)."""
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def check_decluttered(labels: list[dict], grids: pd.DataFrame) -> None:
    """No two visible labels overlap; each hidden label meets a visible one of a grid that
    outranks it (flagged over unflagged, else not smaller: area within 10 % for the
    simplified outlines): nothing is hidden needlessly or in the wrong order."""
    vis = [lb for lb in labels if lb["visible"]]
    for i, a in enumerate(vis):
        for b in vis[i + 1 :]:
            assert not boxes_meet(a["box"], b["box"]), (a["text"], b["text"])

    def key(label: dict) -> pd.Series:
        return grids.loc[re.search(r"\d{3}-\d{3}", label["text"]).group(0)]

    for h in (lb for lb in labels if not lb["visible"]):
        kh = key(h)
        blockers = [key(v) for v in vis if boxes_meet(h["box"], v["box"], DECLUTTER_GAP_PX)]
        assert any(
            kv["flagged"] > kh["flagged"]
            or (kv["flagged"] == kh["flagged"] and kv["area"] >= 0.9 * kh["area"])
            for kv in blockers
        ), (h["text"], len(blockers))


def code_of(label: dict) -> str:
    """The "community-grid" code (``001-002``) of a street-page grid label (the label also
    carries the households on its second line)."""
    return re.search(r"\d{3}-\d{3}", label["text"]).group(0)


def zoom_in(page) -> None:
    """Zoom the page's map in one level (animated, as a user would) and wait for the end."""
    page.evaluate(f"""() => new Promise(done => {{ const m = {leaflet_map_js()};
        m.once('zoomend', () => setTimeout(done, 50)); m.zoomIn(1); }})""")


def test_street_labels_are_decluttered(crowded, browser):
    grids = crowded["grids"]
    p = Page(browser)
    try:
        page = p.open(crowded["page"])
        zoom = f"() => {leaflet_map_js()}.getZoom()"
        z0 = page.evaluate(zoom)
        labels = grid_labels(page)
        assert len(labels) == len(grids) > 30
        # crowded: at the fitted zoom many labels would overlap, so some are hidden
        overlapping = {
            lb["text"]
            for i, lb in enumerate(labels)
            for other in labels[i + 1 :]
            if boxes_meet(lb["box"], other["box"])
        }
        hidden = [lb for lb in labels if not lb["visible"]]
        # (pages are fitted at fractional zoom since issue 17: fewer overlaps than at a
        # whole zoom level, still a crowded page)
        assert len(overlapping) > 5 and len(hidden) > 5
        check_decluttered(labels, grids)
        # a flagged small grid keeps its label where a larger unflagged one gives way
        flagged = [lb for lb in labels if lb["text"].startswith("⚠")]
        assert len(flagged) == N_FLAGGED
        wins = [
            (f["text"], u["text"])
            for f in flagged
            for u in hidden
            if f["visible"]
            and boxes_meet(f["box"], u["box"])
            and not u["text"].startswith("⚠")
            and grids.loc[code_of(u), "area"] > grids.loc[code_of(f), "area"]
        ]
        assert wins, "no flagged grid competed with a larger unflagged neighbour"
        # before/after pair: the page with every label shown, then decluttered again by a
        # resize of the window
        page.evaluate(
            "() => document.querySelectorAll('.gg-label.gg-grid')"
            ".forEach(el => { el.style.visibility = ''; })"
        )
        page.screenshot(path=str(ARTIFACTS / "street_crowded_before.png"))
        page.set_viewport_size({"width": 1000, "height": 850})
        page.wait_for_timeout(300)
        check_decluttered(grid_labels(page), grids)
        page.set_viewport_size({"width": 1200, "height": 850})
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "street_crowded_after.png"))
        assert sum(not lb["visible"] for lb in grid_labels(page)) == len(hidden)
        for level in (1, 2):
            zoom_in(page)
            assert page.evaluate(zoom) == z0 + level
            labels = grid_labels(page)
            check_decluttered(labels, grids)
        # deepest zoom: room for all, nothing in view is hidden
        in_view = [lb for lb in labels if lb["in_view"]]
        assert len(in_view) >= 5
        assert [lb["text"] for lb in in_view if not lb["visible"]] == []
        assert p.errors == [] and p.external == []
    finally:
        p.close()


def test_labels_below_the_zoom_threshold_are_not_counted(browser, tmp_path):
    """A label layer shown from the fitted zoom + 1: at the fitted zoom every label is
    hidden by the threshold (CSS display) and none is marked by the decluttering; one
    level in, the labels show, decluttered in their order (first wins)."""
    import folium

    from gridgis.maps.common import LabelLayer, new_map, render_page

    rng = np.random.default_rng(3)
    lon = 118.80 + rng.uniform(0, 0.012, 80)
    lat = 32.00 + rng.uniform(0, 0.010, 80)
    labels = [
        [float(y), float(x), f"<b>{i:03d}</b>", ""]
        for i, (x, y) in enumerate(zip(lon, lat, strict=True))
    ]
    m = new_map((lon.min(), lat.min(), lon.max(), lat.max()))
    group = folium.FeatureGroup(name="labels")
    LabelLayer(labels, css_class="gg-grid", zoom_offset=1).add_to(group)
    group.add_to(m)
    path = tmp_path / "labels.html"
    path.write_text(inline_assets(render_page(m)), encoding="utf-8")
    p = Page(browser)
    try:
        page = p.open(path)
        z0 = page.evaluate(f"() => {leaflet_map_js()}.getZoom()")
        assert z0 > 14  # the fitted zoom, not folium's zoom_start
        marked = (
            "() => Array.from(document.querySelectorAll('.gg-grid')).filter(el => "
            "el.style.visibility === 'hidden').length"
        )
        shown = grid_labels(page)
        assert len(shown) == 80 and not any(lb["visible"] for lb in shown)
        assert page.evaluate(marked) == 0
        zoom_in(page)
        shown = grid_labels(page)
        vis = [lb for lb in shown if lb["visible"]]
        assert 10 < len(vis) < 80
        for i, a in enumerate(vis):
            assert not any(boxes_meet(a["box"], b["box"]) for b in vis[i + 1 :]), a["text"]
        for i, h in enumerate(shown):
            if not h["visible"]:  # hidden only behind an earlier label shown
                assert any(
                    lb["visible"] and boxes_meet(h["box"], lb["box"], DECLUTTER_GAP_PX)
                    for lb in shown[:i]
                ), h["text"]
        assert p.errors == [] and p.external == []
    finally:
        p.close()


def test_class_breaks_are_data_values_and_never_more_than_the_values():
    from gridgis.maps.common import class_breaks, colour_for

    four = pd.Series([2754, 2770, 2785, 2909])
    assert class_breaks(four) == [2754.0, 2770.0, 2785.0, 2909.0]
    # four values, four different colours
    assert len({colour_for(v, class_breaks(four)) for v in four}) == 4
    many = pd.Series(np.arange(250, 501))
    b = class_breaks(many)
    assert len(b) == 7 and b[-1] == 500 and set(b) <= set(many.astype(float))
    assert class_breaks(pd.Series([300] * 10)) == [300.0]


# --------------------------------------------------------------------------------------
# Maps that read and print (issue 17 point 4)
# --------------------------------------------------------------------------------------


def test_class_breaks_leave_out_zero_and_legends_name_the_ranges_drawn():
    from gridgis.maps.common import NO_HOUSEHOLDS, choropleth_legend_rows, class_breaks, colour_for

    v = pd.Series([0, 0, 67, 300, 310, 420])
    b = class_breaks(v, 7)
    assert 0.0 not in b and b[0] == 67.0  # zero is not a class ("≤ 0" gone)
    assert colour_for(0, b) == NO_HOUSEHOLDS
    rows = choropleth_legend_rows(b, values=v)
    labels = [label for _, label in rows]
    assert labels == ["67", "300", "310", "420", "0 (无住户)"]
    assert not any("≤" in t for t in labels)
    # classes holding several values are labelled by the smallest and largest drawn
    many = pd.Series(np.arange(250, 501))
    labels = [t for _, t in choropleth_legend_rows(class_breaks(many), values=many)]
    assert labels[0].startswith("250 – ") and labels[-1].endswith(" – 500")


def test_legend_swatch_shows_the_drawn_opacity():
    from gridgis.maps.common import swatch_css

    assert swatch_css("#ff0000", 0.55) == "background:rgba(255,0,0,0.55)"
    assert swatch_css("#ff0000") == "background:#ff0000"
    assert "repeating-linear-gradient" in swatch_css("pattern:unit", 0.55)


@pytest.fixture(scope="session")
def small_site(tmp_path_factory):
    """Two communities; community B's only grid is flagged (its outline is the
    community's), community A has a residential, a unit and an open-land grid."""
    from shapely.geometry import Point, box

    st, ca, cb = "320102001", "320102001001", "320102001002"
    y0, y1 = 32.040, 32.043

    def gdf(rows, geoms):
        return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")

    layers = {
        "streets": gdf(
            {"street_code": [st], "name": ["新街口街道"]}, [box(118.800, y0, 118.808, y1)]
        ),
        "communities": gdf(
            {"community_code": [ca, cb], "name": ["甲社区", "乙社区"], "street_code": [st, st]},
            [box(118.800, y0, 118.806, y1), box(118.806, y0, 118.808, y1)],
        ),
        "grids": gdf(
            {
                "grid_code": [ca + "001", ca + "002", ca + "003", cb + "001"],
                "community_code": [ca, ca, ca, cb],
                "kind": ["residential", "unit", "residential", "residential"],
                "households": [300, 0, 0, 420],
                "flags": ["", "", "", "above_max: 420 households"],
            },
            [
                box(118.800, y0, 118.802, y1),
                box(118.802, y0, 118.804, y1),
                box(118.804, y0, 118.806, y1),
                box(118.806, y0, 118.808, y1),
            ],
        ),
        "facilities": gdf(
            {"facility_id": ["f1"], "name": ["幼儿园"], "category": ["kindergarten"]},
            [Point(118.801, 32.041)],
        ),
    }
    out = tmp_path_factory.mktemp("small")
    write_maps(layers, out, boards=False)
    return {"out": out, "street": st, "ca": ca, "cb": cb}


def test_street_page_reads_full_width_with_households_and_metric_scale(site, browser, city_layers):
    street = str(city_layers["streets"]["street_code"].iloc[0])
    p = Page(browser)
    try:
        page = p.open(site.out_dir / "streets" / f"{street}.html", "street_read")
        width = page.evaluate(
            f"() => {leaflet_map_js()}.getContainer().getBoundingClientRect().width"
        )
        assert width >= 0.9 * 1200
        # the street is drawn as large as the window allows (fractional zoom, steps of
        # 0.25: a factor 1.19): its extent fills at least 80 % of the map's width or height,
        # whichever binds (a whole-zoom fit can leave it at 50 %)
        fill = page.evaluate(f"""() => {{ const m = {leaflet_map_js()};
            let b = null;
            m.eachLayer(l => {{ if (l.getBounds && l.feature === undefined && l.getLayers) {{
                try {{ const lb = l.getBounds(); if (lb.isValid()) b = b ? b.extend(lb) : lb; }}
                catch (e) {{}} }} }});
            const p = m.latLngToContainerPoint(b.getNorthWest()),
                  q = m.latLngToContainerPoint(b.getSouthEast()), s = m.getSize();
            return Math.max((q.x - p.x) / s.x, (q.y - p.y) / s.y); }}""")
        assert fill >= 0.8, fill
        labels = [lb for lb in grid_labels(page) if lb["visible"]]
        assert labels and all("户" in lb["text"] or "单位" in lb["text"] for lb in labels)
        scale = page.inner_text(".leaflet-control-scale")
        assert re.search(r"\d+ k?m", scale) and "ft" not in scale and "mi" not in scale
        assert page.locator(".gg-north svg").count() == 1
        legend = page.inner_text(".gg-legend")
        assert "≤" not in legend
        swatches = page.evaluate(
            "() => Array.from(document.querySelectorAll('.gg-legend i')).map(i => i.style.background)"
        )
        assert any(f"{DEFAULT.maps.fill_opacity}" in s for s in swatches)  # rgba(…, 0.55)
        # unit grids drawn with the hatch pattern
        fills = page.evaluate(
            "() => Array.from(document.querySelectorAll('path.leaflet-interactive'))"
            ".map(e => e.getAttribute('fill'))"
        )
        kinds = city_layers["grids"]
        if (kinds["grid_code"].astype(str).str[:9].eq(street) & kinds["kind"].eq("unit")).any():
            assert "url(#gg-unit)" in fills and "单位网格" in legend
        assert p.errors == []
    finally:
        p.close()


def test_print_media_hides_controls_and_shows_title_date_north_scale(site, browser, city_layers):
    import datetime as dt

    street = str(city_layers["streets"]["street_code"].iloc[0])
    p = Page(browser)
    try:
        page = p.open(site.out_dir / "streets" / f"{street}.html")
        shown = "(s) => { const e = document.querySelector(s); return !!e && getComputedStyle(e).display !== 'none'; }"
        assert page.evaluate(shown, ".leaflet-control-zoom")
        assert not page.evaluate(shown, ".gg-date")
        page.emulate_media(media="print")
        page.wait_for_timeout(100)
        for sel in (
            ".leaflet-control-zoom",
            ".leaflet-control-layers",
            ".leaflet-control-attribution",
        ):
            assert not page.evaluate(shown, sel), sel
        for sel in (".gg-title", ".gg-date", ".gg-north", ".leaflet-control-scale", ".gg-legend"):
            assert page.evaluate(shown, sel), sel
        assert dt.date.today().isoformat() in page.inner_text(".gg-date")
        page.screenshot(path=str(ARTIFACTS / "street_print.png"))
        pdf = page.pdf(prefer_css_page_size=True, print_background=True)
        assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1  # one landscape sheet
        page.emulate_media(media="screen")
    finally:
        p.close()


def test_flagged_only_grid_of_a_community_is_drawn_above_its_boundary(small_site, browser):
    p = Page(browser)
    try:
        page = p.open(
            small_site["out"] / "streets" / f"{small_site['street']}.html", "flagged_only"
        )
        assert "⚠ 问题网格 (1)" in layer_names(page)
        strokes = page.evaluate(
            "() => Array.from(document.querySelectorAll('.leaflet-overlay-pane path'))"
            ".map(e => e.getAttribute('stroke'))"
        )
        # the red flagged outline comes after (is painted over) every community boundary
        assert "#d00000" in strokes and "#54278f" in strokes
        assert strokes.index("#d00000") > max(i for i, s in enumerate(strokes) if s == "#54278f")
        legend = page.inner_text(".gg-legend")
        assert "单位网格 (1)" in legend and "开放空间网格" in legend and "问题网格" in legend
        fills = page.evaluate(
            "() => Array.from(document.querySelectorAll('path.leaflet-interactive'))"
            ".map(e => e.getAttribute('fill'))"
        )
        assert "url(#gg-unit)" in fills and "url(#gg-open)" in fills
        # the label of the flagged grid is shown with its households
        labels = grid_labels(page)
        assert any(lb["text"].startswith("⚠") and "420户" in lb["text"] for lb in labels)
        assert p.errors == []
    finally:
        p.close()


def test_facility_markers_sit_above_the_fills(small_site, browser):
    p = Page(browser)
    try:
        page = p.open(small_site["out"] / "communities" / f"{small_site['ca']}.html")
        z = page.evaluate(
            "() => [getComputedStyle(document.querySelector('.leaflet-overlay-pane')).zIndex,"
            " getComputedStyle(document.querySelector('.leaflet-ggPoints-pane')).zIndex]"
        )
        assert int(z[1]) > int(z[0])
        assert page.locator(".leaflet-ggPoints-pane canvas").count() == 1
        assert p.errors == []
    finally:
        p.close()


def test_community_page_links_to_the_editor_only_when_served(site, city_layers):
    """Served by `gridgis serve`, a community page leads to its grid editor (/edit/<code>);
    opened as a file the link stays hidden (there is no editor there)."""
    code = str(city_layers["communities"]["community_code"].iloc[0])
    page = (site.out_dir / "communities" / f"{code}.html").read_text(encoding="utf-8")
    assert 'id="gg-edit-link"' in page and f"'/edit/'+\"{code}\"" in page
    assert "location.protocol" in page and "display:none" in page
