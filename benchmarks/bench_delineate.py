"""Benchmark: gridgis delineation beside spopt MaxPHeuristic, and the 1,000,000-household
demo city end to end.

Both peers get the very same units (street blocks of the demo city cut into building cells,
:func:`gridgis.delineate.unit_graph`), the same households and the same adjacency (shared
boundary > 0). spopt's max-p has a floor only: threshold = the minimum (250 households),
attributes = unit centroids (compact regions). Reported per problem: time, regions, share
of regions within 250–500 households, mean Polsby-Popper of the regions.

    .venv/bin/python benchmarks/bench_delineate.py                  # print
    .venv/bin/python benchmarks/bench_delineate.py --append         # and add to RESULTS.md

Needs spopt (dev only: ``.venv/bin/pip install spopt``).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import time
from pathlib import Path

import numpy as np
import shapely

from gridgis.crs import metric_crs_for
from gridgis.delineate import delineate, recount, unit_graph
from gridgis.standards import Settings
from gridgis.synth import make_city

RESULTS = Path(__file__).with_name("RESULTS.md")


def region_stats(
    faces: np.ndarray, households: np.ndarray, labels: np.ndarray, lo: int, hi: int
) -> dict:
    """Regions, share within [lo, hi], mean Polsby-Popper (4πA/P² of the dissolved region),
    and whether every region is one polygon."""
    regions = np.unique(labels)
    hh = np.array([households[labels == r].sum() for r in regions])
    geoms = [shapely.union_all(faces[labels == r], grid_size=1e-3) for r in regions]
    pp = [4 * math.pi * g.area / g.length**2 for g in geoms]
    single = sum(g.geom_type == "Polygon" for g in geoms)
    return {
        "regions": len(regions),
        "in_range": float(np.mean((hh >= lo) & (hh <= hi))),
        "over_max": int((hh > hi).sum()),
        "under_min": int((hh < lo).sum()),
        "pp": float(np.mean(pp)),
        "contiguous": single / len(regions),
        "mean_hh": float(hh.mean()),
    }


def problem(city, target_units: int, settings: Settings):
    """Units of a square of the demo city's communities sized to ~target_units."""
    comm = city.layers["communities"]
    crs = metric_crs_for(comm)
    whole = shapely.union_all(comm.to_crs(crs).geometry.to_numpy())
    b = city.layers["buildings"].to_crs(crs)
    r = city.layers["roads"].to_crs(crs)
    cx, cy = whole.centroid.x, whole.centroid.y
    lo_s, hi_s = 100.0, 2 * math.sqrt(whole.area)
    ug = None
    for _ in range(14):
        side = (lo_s + hi_s) / 2
        area = shapely.intersection(
            whole, shapely.box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        )
        parts = shapely.get_parts(area)
        area = parts[np.argmax(shapely.area(parts))]
        ug = unit_graph(area, b, r, settings, split_above=0)
        n = len(ug.faces)
        if abs(n - target_units) <= 0.05 * target_units:
            break
        lo_s, hi_s = (side, hi_s) if n < target_units else (lo_s, side)
    return ug


def run_spopt(ug, settings: Settings) -> tuple[float, np.ndarray]:
    import geopandas as gpd
    from libpysal.weights import W
    from spopt.region import MaxPHeuristic

    cen = shapely.centroid(ug.faces)
    gdf = gpd.GeoDataFrame(
        {"households": ug.households, "x": shapely.get_x(cen), "y": shapely.get_y(cen)},
        geometry=ug.faces,
    )
    neighbors = {i: [] for i in range(len(ug.faces))}
    for a, b in ug.edges:
        neighbors[int(a)].append(int(b))
        neighbors[int(b)].append(int(a))
    w = W(neighbors, silence_warnings=True)
    np.random.seed(0)
    random.seed(0)
    model = MaxPHeuristic(gdf, w, ["x", "y"], "households", settings.grid.min_households, top_n=2)
    t = time.perf_counter()
    model.solve()
    return time.perf_counter() - t, np.asarray(model.labels_)


def run_gridgis(ug, settings: Settings) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    labels = ug.partitioner(settings).solve()
    return time.perf_counter() - t, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", action="store_true", help="append results to RESULTS.md")
    ap.add_argument("--sizes", default="900,2000", help="units per problem")
    ap.add_argument("--big", type=int, default=1_000_000, help="households of the big city")
    args = ap.parse_args()
    settings = Settings()
    lo, hi = settings.grid.min_households, settings.grid.max_households
    lines = []
    city = make_city(households=150_000, seed=7, settings=settings)
    for size in [int(s) for s in args.sizes.split(",")]:
        ug = problem(city, size, settings)
        n, total = len(ug.faces), int(ug.households.sum())
        tg, lg = run_gridgis(ug, settings)
        sg = region_stats(ug.faces, ug.households, lg, lo, hi)
        ts, ls = run_spopt(ug, settings)
        ss = region_stats(ug.faces, ug.households, ls, lo, hi)
        for name, t, s in (("gridgis", tg, sg), ("spopt MaxPHeuristic", ts, ss)):
            lines.append(
                f"| {n:,} units, {total:,} hh | {name} | {t:.3f} | {s['regions']} | "
                f"{s['in_range']:.1%} | {s['over_max']} | {s['under_min']} | "
                f"{s['mean_hh']:.0f} | {s['pp']:.3f} | {s['contiguous']:.0%} |"
            )
        lines.append(
            f"| | **ratio** | **{ts / tg:.0f}× faster** | | | | | | "
            f"{sg['pp'] / ss['pp']:.2f}× PP | |"
        )
        print("\n".join(lines[-3:]), flush=True)
    # the big demo city, end to end (delineate + assign + recount; make_city apart)
    from gridgis.assign import assign_all

    t0 = time.perf_counter()
    big = make_city(households=args.big, seed=7, settings=settings)
    t_make = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = delineate(big.layers, settings)
    t_del = time.perf_counter() - t0
    layers = dict(big.layers)
    layers["buildings"] = res.buildings
    assigned = assign_all(layers, res.grids, settings)
    grids = recount(assigned.grids, assigned.buildings, settings)
    t_all = time.perf_counter() - t0
    r_ = grids[grids["kind"] == "residential"]
    inr = r_["households"].between(lo, hi).mean()
    big_line = (
        f"| {args.big:,}-household demo city ({len(big.layers['buildings']):,} "
        f"buildings, {len(big.layers['communities'])} communities) | "
        f"{t_del:.1f} s delineate, {t_all:.1f} s delineate + assign | "
        f"{len(grids):,} grids, {inr:.1%} residential within {lo}–{hi}, "
        f"{int((grids['flags'] != '').sum())} flagged, mean PP "
        f"{grids['polsby_popper'].mean():.3f} | make_city {t_make:.1f} s |"
    )
    print(big_line)
    cpus = len(os.sched_getaffinity(0))
    text = "\n".join(
        [
            "",
            "## Delineation (issue 3): gridgis vs spopt MaxPHeuristic",
            "",
            f"Command: `.venv/bin/python benchmarks/bench_delineate.py --append` "
            f"({platform.processor() or platform.machine()}, {cpus} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} at the end; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
            "Same units (demo city street blocks cut into building cells), households and "
            "adjacency for both; spopt threshold = 250 (floor only), attributes = centroids.",
            "",
            "| problem | method | seconds | regions | within 250–500 | over 500 | under 250 | "
            "mean hh | mean Polsby-Popper | one polygon |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *lines,
            "",
            "| big city | time | result | |",
            "|---|---|---|---|",
            big_line,
            "",
        ]
    )
    if args.append:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write(text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
