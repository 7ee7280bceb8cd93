"""Maps: size and headless-Chromium load time of the index page of a big demo city, gridgis
beside the peer (geopandas ``GeoDataFrame.explore()``, folium underneath, same local
Leaflet so both load offline), and the time to write the whole site.

Usage::

    .venv/bin/python benchmarks/bench_maps.py --households 1000000 [--append]
    .venv/bin/python benchmarks/bench_maps.py --households 100000 --site-only [--boards]
    .venv/bin/python benchmarks/bench_maps.py --tiled-workspace city.gpkg --maps maps/

``--tiled-workspace`` opens the pages of a city drawn from tiles (``gridgis map`` above
``maps.tiles_above_grids``) in headless Chromium, served with their tiles by a real
``gridgis serve`` on the workspace (pre-built ``city.mbtiles`` beside it when present):
seconds from navigation until every visible tile is drawn, each page in a fresh browser
context (empty cache), and a click from the city to a street view.

``--site-only`` times :func:`gridgis.maps.write_maps` alone (wall and CPU seconds, Jinja
template compilations, peak memory of the process); run it with ``PYTHONPATH`` pointing at
another checkout to compare two versions on the same city.

The issue's targets: index page ≤ 10 MB and loaded in < 3 s for 1,000,000 households.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gridgis.maps import render_page, write_maps
from gridgis.maps.common import CSS_ASSETS, JS_ASSETS, asset_prefix, prepare
from gridgis.maps.levels import index_map
from gridgis.maps.site import TOLERANCE_M, summarise
from gridgis.standards import DEFAULT

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


def load_seconds(page_path: Path, repeats: int = 5) -> float:
    """Median seconds from navigation to the map drawn (load event + two frames); raises
    if the page has a JavaScript error."""
    from playwright.sync_api import sync_playwright

    times = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1200, "height": 850})
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(page_path.as_uri(), wait_until="load", timeout=120_000)
            page.evaluate(
                "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
            )
            times.append(time.perf_counter() - t0)
            page.close()
        browser.close()
    if errors:  # a page that stops on an error would look fast
        raise RuntimeError(f"{page_path.name}: {errors[0]}")
    return sorted(times)[len(times) // 2]


def site_run(layers: dict, out: Path, boards: bool) -> dict:
    """Write the whole site once: wall and CPU seconds, Jinja compilations, pages, MB."""
    import resource

    import jinja2

    compiled = 0
    original = jinja2.Environment.compile

    def counting(self, *a, **k):
        nonlocal compiled
        compiled += 1
        return original(self, *a, **k)

    jinja2.Environment.compile = counting
    try:
        t, c = time.perf_counter(), time.process_time()
        site = write_maps(layers, out, boards=boards)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    finally:
        jinja2.Environment.compile = original
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "compilations": compiled,
        "pages": len(site.pages),
        "mb": sum(p.stat().st_size for p in site.pages) / 1e6,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


TILED_PAGES = ("index.html", "street", "community", "coverage.html", "lookup.html")
"""Pages timed by :func:`tiled_page_times`: street and community are a middle one's
forwarding page (``streets/<code>.html``), which opens the tile page on its view."""


def _serve(workspace: Path, maps: Path):
    """A ``gridgis serve`` subprocess on a free port; returns (process, base URL)."""
    import os
    import subprocess
    import sys

    import httpx

    from gridgis.store.pgtemp import free_port

    port = free_port()
    exe = Path(sys.executable).parent / "gridgis"
    proc = subprocess.Popen(
        [str(exe), "serve", "--workspace", str(workspace), "--maps", str(maps)]
        + ["--port", str(port), "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600  # a 20,000,000-household workspace: minutes
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("gridgis serve did not start")


def tiled_page_times(
    workspace: Path, maps: Path, repeats: int = 3, base: str | None = None
) -> list[tuple]:
    """(page, median s, max s, tiles requested, KB of tiles) per page of
    :data:`TILED_PAGES`, then the click from the city view to a street view."""
    import json

    from playwright.sync_api import sync_playwright

    text = (maps / "tiles_index.js").read_text(encoding="utf-8")
    idx = json.loads(text[len("window.ggIndex = ") :].rstrip().rstrip(";"))
    streets, comms = sorted(idx["streets"]), sorted(idx["communities"])
    urls = {
        "street": f"streets/{streets[len(streets) // 2]}.html",
        "community": f"communities/{comms[len(comms) // 2]}.html",
    }
    ready = "() => window.ggTilesLoaded === true"
    proc = None
    if base is None:
        proc, base = _serve(workspace, maps)
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for name in TILED_PAGES:
                times, n_tiles, kb = [], 0, 0.0
                for _ in range(repeats):
                    ctx = browser.new_context(viewport={"width": 1200, "height": 850})
                    page = ctx.new_page()
                    got: list = []
                    page.on(
                        "response", lambda r, got=got: got.append(r) if "/tiles/" in r.url else None
                    )
                    t0 = time.perf_counter()
                    page.goto(f"{base}/maps/{urls.get(name, name)}", timeout=120_000)
                    page.wait_for_function(ready, timeout=120_000)
                    times.append(time.perf_counter() - t0)
                    n_tiles = len(got)
                    kb = sum(int(r.headers.get("content-length", 0)) for r in got) / 1e3
                    ctx.close()
                rows.append((name, sorted(times)[len(times) // 2], max(times), n_tiles, kb))
                print(rows[-1], flush=True)
            ctx = browser.new_context(viewport={"width": 1200, "height": 850})
            page = ctx.new_page()
            page.goto(f"{base}/maps/index.html", timeout=120_000)
            page.wait_for_function(ready, timeout=120_000)
            b = idx["communities"][comms[len(comms) // 2]]["b"]  # its box's centre
            xy = page.evaluate(
                f"() => {{ var p = window.ggMap.latLngToContainerPoint([{(b[1] + b[3]) / 2}, "
                f"{(b[0] + b[2]) / 2}]); return [p.x, p.y]; }}"
            )
            t0 = time.perf_counter()
            page.mouse.click(*xy)
            page.wait_for_function(
                "() => window.ggView.level === 'street' && window.ggTilesLoaded", timeout=120_000
            )
            rows.append(("click city → street", time.perf_counter() - t0, 0.0, 0, 0.0))
            browser.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--append", action="store_true", help="append to benchmarks/RESULTS.md")
    ap.add_argument("--site", action="store_true", help="also time the whole site (slow)")
    ap.add_argument("--site-only", action="store_true", help="time only the whole site")
    ap.add_argument("--boards", action="store_true", help="with --site-only: boards too")
    ap.add_argument("--tiled-workspace", type=Path, help="time the tile pages of this city")
    ap.add_argument("--maps", type=Path, help="with --tiled-workspace: its maps folder")
    ap.add_argument(
        "--serve-url", help="with --tiled-workspace: a gridgis serve already running on it"
    )
    args = ap.parse_args()
    if args.tiled_workspace:
        print("| page | median s | max s | tiles requested | tile KB |")
        print("|---|---|---|---|---|")
        for name, med, worst, n, kb in tiled_page_times(
            args.tiled_workspace, args.maps, base=args.serve_url
        ):
            print(f"| {name} | {med:.2f} | {worst:.2f} | {n} | {kb:.0f} |")
        return

    from gridgis.delineate import delineate
    from gridgis.synth import make_city

    out = Path(tempfile.mkdtemp(prefix="bench_maps_"))
    t = time.perf_counter()
    city = make_city(households=args.households, seed=args.seed)
    layers = dict(city.layers)
    t_city = time.perf_counter() - t
    t = time.perf_counter()
    d = delineate(layers, DEFAULT)
    layers["grids"], layers["buildings"] = d.grids, d.buildings
    t_delin = time.perf_counter() - t
    print(
        f"city {t_city:.1f} s, delineation {t_delin:.1f} s: {len(layers['streets'])} streets, "
        f"{len(layers['communities'])} communities, {len(d.grids)} grids, "
        f"{len(layers['buildings'])} buildings"
    )

    if args.site_only:
        write_maps(  # warm-up: imports, folium's class templates
            {"streets": layers["streets"].head(1), "communities": layers["communities"].head(1)},
            out / "warm",
            boards=False,
        )
        r = site_run(layers, out / "site", args.boards)
        print(
            f"| {args.households:,} | {r['pages']:,} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['compilations']:,} | {r['mb']:.1f} | {r['peak_gb']:.2f} |"
        )
        return

    # warm up both (imports: mapclassify for explore, folium templates)
    tiny = layers["communities"].head(2).assign(households=1, grid_count=1)
    tiny.explore(column="households", tiles=None, legend=False).get_root().render()
    index_map(
        layers["streets"].head(1).assign(households=1, community_count=1, grid_count=1),
        tiny.assign(street_name="x"),
    ).get_root().render()

    # gridgis index page (what write_maps does for index.html)
    t = time.perf_counter()
    streets, comms = summarise(layers)
    m = index_map(
        prepare(streets, TOLERANCE_M["index"], coverage=True),
        prepare(comms, TOLERANCE_M["index"], coverage=True),
        prefix=asset_prefix(0),
    )
    ours = render_page(m)
    t_ours = time.perf_counter() - t
    # peer: geopandas explore() of the same summarised layers (all their columns, full
    # geometry), streets added on top; the same local Leaflet so it loads offline too
    t = time.perf_counter()
    pm = comms.explore(
        column="households",
        tooltip=["name", "community_code", "households", "grid_count"],
        tiles=None,
        legend=False,
    )  # its colour legend needs d3 from a CDN
    streets.explore(m=pm, style_kwds={"fill": False, "weight": 4})
    pm.default_js = [(n, asset_prefix(0) + p) for n, p in JS_ASSETS]
    pm.default_css = [(n, asset_prefix(0) + p) for n, p in CSS_ASSETS]
    peer = pm.get_root().render()
    t_peer = time.perf_counter() - t
    site_dir = out / "site"
    site_dir.mkdir()
    write_maps(
        {"streets": layers["streets"], "communities": layers["communities"]}, site_dir, boards=False
    )  # copies static/
    (site_dir / "index.html").write_text(ours, encoding="utf-8")
    (site_dir / "peer.html").write_text(peer, encoding="utf-8")
    mb_ours = len(ours.encode()) / 1e6
    mb_peer = len(peer.encode()) / 1e6
    load_ours = load_seconds(site_dir / "index.html")
    load_peer = load_seconds(site_dir / "peer.html")

    rows = [
        ("index page build (s)", t_ours, t_peer),
        ("index page size (MB)", mb_ours, mb_peer),
        ("index load in headless Chromium (s, median of 5)", load_ours, load_peer),
    ]
    site_line = ""
    if args.site:
        layers_all = {k: v for k, v in layers.items()}
        t = time.perf_counter()
        site = write_maps(layers_all, out / "full", boards=True)
        t_site = time.perf_counter() - t
        size = sum(p.stat().st_size for p in site.pages) / 1e6
        site_line = (
            f"whole site ({len(site.pages):,} pages, {size:.0f} MB incl. "
            f"{site.count('boards'):,} boards): {t_site:.1f} s"
        )
        print(site_line)
    table = [
        "| measure | gridgis | peer (GeoDataFrame.explore) | peer / gridgis |",
        "|---|---|---|---|",
    ]
    for name, a, b in rows:
        table.append(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.1f}× |")
    print("\n".join(table))
    ok = mb_ours <= 10 and load_ours < 3
    verdict = (
        f"targets (≤ 10 MB, < 3 s): {'met' if ok else 'NOT met'} — "
        f"{mb_ours:.2f} MB, {load_ours:.2f} s"
    )
    print(verdict)
    if args.append:
        text = [
            "",
            "## Maps (issue 7)",
            "",
            f"Command: `.venv/bin/python benchmarks/bench_maps.py --households "
            f"{args.households}{' --site' if args.site else ''} --append` (2-core machine shared "
            f"with other jobs). Demo city seed {args.seed}: {len(layers['streets'])} streets, "
            f"{len(layers['communities'])} communities, {len(d.grids):,} grids (real "
            f"delineation, {t_delin:.0f} s). Peer: geopandas `GeoDataFrame.explore()` of the "
            f"same streets and communities (full geometry, folium underneath), given the same "
            f"local Leaflet so it also loads offline. Load = navigation to load event plus two "
            f"animation frames, Debian chromium headless.",
            "",
            *table,
            "",
            verdict,
        ]
        if site_line:
            text += ["", site_line]
        results = Path(__file__).with_name("RESULTS.md")
        with results.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
