"""Vector tiles on a big demo city: tile generation rate per zoom (GeoPackage, Python
encoder), an MBTiles pre-build, the tile page's load time in Chromium from a real
``gridgis serve``, and ``gridgis map`` time / peak memory with and without the tile page.

Usage::

    .venv/bin/python benchmarks/bench_tiles.py --households 1000000 [--no-map] [--append]

The city is built and delineated first (not timed). ``gridgis map`` runs as a child
process under ``/usr/bin/time -v`` (peak resident memory of that process), boards off.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRIDGIS = Path(sys.executable).parent / "gridgis"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def build_city(households: int, folder: Path) -> Path:
    from gridgis.standards import DEFAULT
    from gridgis.store import GeoPackageStore
    from gridgis.synth import make_city
    from gridgis.workflows import run_demo

    path = folder / "city.gpkg"
    city = make_city(households=households, seed=7)
    store = GeoPackageStore(path)
    store.write_many(city.layers, params=city.params)
    store.set_meta(**city.meta)
    run_demo(store, DEFAULT, folder, steps=["delineate"])
    store.close()
    return path


def postgis_copy(path: Path) -> str:
    """A throwaway PostGIS workspace holding the tile layers of the GeoPackage."""
    from gridgis import tiles
    from gridgis.store import GeoPackageStore, open_store
    from gridgis.store.pgtemp import fresh_workspace_url

    url = fresh_workspace_url()
    src = GeoPackageStore(path)
    dst = open_store(url)
    dst.write_many({n: src.read(n) for n in tiles.TILE_LAYERS if src.has(n)})
    dst.close()
    src.close()
    return url


def tile_rates(path, zooms=(11, 12, 13, 14, 15, 16), sample: int = 40) -> list[dict]:
    from gridgis import tiles
    from gridgis.store import open_store

    store = open_store(path, create=False)
    bounds = tiles.workspace_bounds(store)
    rows = []
    for z in zooms:
        xy = list(tiles.tiles_covering(bounds, z))
        step = max(1, len(xy) // sample)
        chosen = xy[::step][:sample]
        sizes, t0 = [], time.perf_counter()
        for x, y in chosen:
            sizes.append(len(tiles.make_tile(store, z, x, y)))
        dt = time.perf_counter() - t0
        rows.append(
            {
                "z": z,
                "tiles_total": len(xy),
                "sampled": len(chosen),
                "per_s": len(chosen) / dt,
                "mean_kb": sum(sizes) / len(sizes) / 1024,
                "max_kb": max(sizes) / 1024,
            }
        )
        print(rows[-1], flush=True)
    store.close()
    return rows


def mbtiles(path: Path, out: Path, minzoom: int, maxzoom: int) -> tuple[int, float, float]:
    from gridgis import tiles
    from gridgis.store import GeoPackageStore

    store = GeoPackageStore(path)
    t0 = time.perf_counter()
    n = tiles.build_mbtiles(store, out, minzoom, maxzoom)
    dt = time.perf_counter() - t0
    store.close()
    return n, dt, out.stat().st_size / 1e6


def run_map(path: Path, out: Path, threshold: int) -> tuple[float, float, int]:
    """(wall s, peak GB, pages) of ``gridgis map`` with ``maps.tiles_above_grids``."""
    cmd = [
        "/usr/bin/time",
        "-v",
        str(GRIDGIS),
        "map",
        "--workspace",
        str(path),
        "--out",
        str(out),
        "--no-boards",
        "--set",
        f"maps.tiles_above_grids={threshold}",
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    pages = sum(1 for _ in out.rglob("*.html"))
    return wall, kb / 1e6, pages


def page_load(path: Path, maps: Path) -> tuple[float, int]:
    """Seconds from navigation until every visible tile is drawn on ``tiles.html`` served by
    ``gridgis serve``; and the page's size in bytes."""
    import httpx
    from playwright.sync_api import sync_playwright

    from gridgis.store.pgtemp import free_port

    port = free_port()
    env = dict(os.environ)
    env.pop("GRIDGIS_DATABASE_URL", None)
    proc = subprocess.Popen(
        [str(GRIDGIS), "serve", "--workspace", str(path), "--maps", str(maps)]
        + ["--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        times = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1200, "height": 850})
                t0 = time.perf_counter()
                page.goto(f"{base}/maps/tiles.html")
                page.wait_for_function("() => window.ggTilesLoaded === true", timeout=120_000)
                times.append(time.perf_counter() - t0)
                page.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return sorted(times)[1], (maps / "tiles.html").stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--no-map", action="store_true", help="skip the two gridgis map runs")
    ap.add_argument("--append", action="store_true", help="append a table to RESULTS.md")
    ap.add_argument(
        "--postgis-only",
        action="store_true",
        help="only the tile rates, GeoPackage (Python encoder) beside PostGIS (ST_AsMVT)",
    )
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    try:
        t0 = time.perf_counter()
        ws = build_city(args.households, folder)
        print(f"city built and delineated in {time.perf_counter() - t0:.0f} s", flush=True)
        if args.postgis_only:
            both = {"GeoPackage": tile_rates(ws), "PostGIS": tile_rates(postgis_copy(ws))}
            if args.append:
                append_rates(args.households, both)
            return
        rates = tile_rates(ws)
        n, dt, mb = mbtiles(ws, folder / "city.mbtiles", 10, 15)
        print(f"mbtiles z10-15: {n} tiles, {dt:.1f} s, {mb:.1f} MB", flush=True)
        maps_rows = []
        if not args.no_map:
            for label, threshold in (("without tile page", 10**9), ("with tile page", 0)):
                out = folder / f"maps-{threshold}"
                maps_rows.append((label, *run_map(ws, out, threshold)))
                print(maps_rows[-1], flush=True)
            load, size = page_load(ws, folder / "maps-0")
            print(f"tiles.html: {size} bytes, drawn in {load:.2f} s (median of 3)", flush=True)
        else:
            from gridgis.maps.tiled import write_tiled
            from gridgis.standards import DEFAULT
            from gridgis.store import GeoPackageStore

            store = GeoPackageStore(ws)
            (folder / "m").mkdir()
            shutil.copytree(Path(__file__).parents[1] / "gridgis" / "static", folder / "m/static")
            s = DEFAULT.override({"maps.tiles_above_grids": 0})
            write_tiled(folder / "m", store.read("grids"), store.read("communities"), s)
            store.close()
            load, size = page_load(ws, folder / "m")
            print(f"tiles.html: {size} bytes, drawn in {load:.2f} s (median of 3)", flush=True)
        if args.append:
            append(args.households, rates, (n, dt, mb), maps_rows, (load, size))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def append_rates(households: int, both: dict[str, list[dict]]) -> None:
    names = list(both)
    lines = [
        "",
        f"## Vector tiles per store ({households:,} households, `bench_tiles.py`)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_tiles.py --households {households}"
        " --postgis-only --append` (2 shared cores; run once).",
        "",
        "| zoom | tiles sampled | " + " | ".join(f"{n} tiles/s" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for rows in zip(*both.values(), strict=True):
        rates = " | ".join(f"{r['per_s']:.1f}" for r in rows)
        lines.append(f"| {rows[0]['z']} | {rows[0]['sampled']} | {rates} |")
    with open(Path(__file__).parent / "RESULTS.md", "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def append(households, rates, mbt, maps_rows, load) -> None:
    lines = [
        "",
        f"## Vector tiles ({households:,} households, `bench_tiles.py`)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_tiles.py --households {households}"
        " --append` (2 cores shared with other sessions; run once).",
        "",
        "| zoom | tiles over the city | sampled | tiles/s | mean KB | max KB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rates:
        lines.append(
            f"| {r['z']} | {r['tiles_total']:,} | {r['sampled']} | {r['per_s']:.1f} | "
            f"{r['mean_kb']:.1f} | {r['max_kb']:.1f} |"
        )
    n, dt, mb = mbt
    lines += ["", f"MBTiles z10–15: {n:,} tiles in {dt:.1f} s, {mb:.1f} MB.", ""]
    if maps_rows:
        lines += ["| `gridgis map --no-boards` | wall s | peak GB | pages |", "|---|---|---|---|"]
        for label, wall, gb, pages in maps_rows:
            lines.append(f"| {label} | {wall:.1f} | {gb:.2f} | {pages:,} |")
        lines.append("")
    lines.append(
        f"`tiles.html` ({load[1]:,} bytes) drawn from served tiles in Chromium in "
        f"{load[0]:.2f} s (median of 3)."
    )
    with open(Path(__file__).parent / "RESULTS.md", "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
