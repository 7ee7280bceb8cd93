"""Benchmark: gridgis delineation beside spopt MaxPHeuristic, and the 1,000,000-household
demo city end to end.

Three parts (``--parts``): ``communities`` — every community of the 30,000-household demo
city (issue 15: ≥ 100× on each), both peers timed in process on the same building cells;
``problems`` — larger single problems cut from a 150,000-household city; ``big`` — the
1,000,000-household city, delineate + assign + recount (issue 15: ≤ 15 s), with a profile
of a 150,000-household delineation (single process) saying where the time goes.

Both peers get the very same units (street blocks of the demo city cut into building cells,
:func:`gridgis.delineate.unit_graph`), the same households and the same adjacency (shared
boundary > 0). spopt's max-p has a floor only: threshold = the minimum (250 households),
attributes = unit centroids (compact regions). Reported per problem: time, regions, share
of regions within 250–500 households, mean Polsby-Popper of the regions.

    .venv/bin/python benchmarks/bench_delineate.py                  # print
    .venv/bin/python benchmarks/bench_delineate.py --append         # and add to RESULTS.md
    .venv/bin/python benchmarks/bench_delineate.py --parts communities,big --append
    .venv/bin/python benchmarks/bench_delineate.py --parts cpu --cpu 200000  # CPU s, A/B

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


def run_gridgis(ug, settings: Settings, repeats: int = 1) -> tuple[float, np.ndarray]:
    """Seconds of one solve (the median of ``repeats`` solves from the same inputs)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        labels = ug.partitioner(settings).solve()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), labels


def per_community(households: int, settings: Settings) -> tuple[list[str], str]:
    """Every community of the demo city: gridgis partitioner vs spopt on its building
    cells (unit_graph, split_above=0); plus the whole library call delineate()."""
    lo, hi = settings.grid.min_households, settings.grid.max_households
    city = make_city(households=households, seed=7, settings=settings)
    comm = city.layers["communities"]
    crs = metric_crs_for(comm)
    b = city.layers["buildings"].to_crs(crs)
    r = city.layers["roads"].to_crs(crs)
    t0 = time.perf_counter()
    delineate(city.layers, settings)
    t_call = time.perf_counter() - t0
    rows, tg_all, ts_all, ratios = [], 0.0, 0.0, []
    for code, poly in zip(comm["community_code"], comm.to_crs(crs).geometry, strict=True):
        ug = unit_graph(poly, b, r, settings, split_above=0)
        tg, lg = run_gridgis(ug, settings, repeats=5)
        ts, ls = run_spopt(ug, settings)
        sg = region_stats(ug.faces, ug.households, lg, lo, hi)
        ss = region_stats(ug.faces, ug.households, ls, lo, hi)
        tg_all, ts_all = tg_all + tg, ts_all + ts
        ratios.append(ts / tg)
        rows.append(
            f"| {code} | {len(ug.faces)} | {int(ug.households.sum()):,} | {tg * 1000:.1f} | "
            f"{ts:.2f} | **{ts / tg:,.0f}×** | {sg['in_range']:.0%} / {ss['in_range']:.0%} | "
            f"{sg['pp']:.2f} / {ss['pp']:.2f} |"
        )
        print(rows[-1], flush=True)
    summary = (
        f"{len(rows)} communities: partitioner {tg_all:.3f} s in all, spopt {ts_all:.1f} s: "
        f"**{ts_all / tg_all:,.0f}×** overall, **{min(ratios):,.0f}×** on the least favourable "
        f"community; the whole library call delineate() (faces, cells, partition, crossings, "
        f"codes) {t_call:.2f} s = **{ts_all / t_call:,.0f}×** spopt's solve time alone."
    )
    print(summary)
    return rows, summary


def profile_lines(households: int, settings: Settings, top: int = 12) -> list[str]:
    """Where a single-process delineation of a ``households`` city spends its time
    (cProfile, internal time of the top functions)."""
    import cProfile
    import pstats

    city = make_city(households=households, seed=7, settings=settings)
    old = os.environ.get("GRIDGIS_WORKERS")
    os.environ["GRIDGIS_WORKERS"] = "1"
    prof = cProfile.Profile()
    try:
        prof.enable()
        delineate(city.layers, settings)
        prof.disable()
    finally:
        if old is None:
            os.environ.pop("GRIDGIS_WORKERS", None)
        else:
            os.environ["GRIDGIS_WORKERS"] = old
    st = pstats.Stats(prof)
    total = st.total_tt
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:top]
    out = [
        f"| {Path(f).name}:{ln} {fn} | {tt:.2f} | {tt / total:.0%} |"
        for (f, ln, fn), (_, _, tt, _, _) in rows
    ]
    out.insert(
        0, f"| total (profiled, {households:,} households, 1 process) | {total:.2f} | 100% |"
    )
    return out


def cpu_seconds(households: int, repeats: int, settings: Settings) -> list[float]:
    """Process CPU seconds of ``repeats`` single-process delineations of the same city
    (after one warm-up run: imports, PROJ database), sorted. CPU time, not wall time: on
    the shared machine wall time mostly measures the other sessions."""
    city = make_city(households=households, seed=7, settings=settings)
    old = os.environ.get("GRIDGIS_WORKERS")
    os.environ["GRIDGIS_WORKERS"] = "1"
    try:
        delineate(city.layers, settings)
        out = []
        for _ in range(repeats):
            c0 = time.process_time()
            delineate(city.layers, settings)
            out.append(time.process_time() - c0)
    finally:
        if old is None:
            os.environ.pop("GRIDGIS_WORKERS", None)
        else:
            os.environ["GRIDGIS_WORKERS"] = old
    return sorted(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", action="store_true", help="append results to RESULTS.md")
    ap.add_argument("--parts", default="communities,problems,big", help="parts to run")
    ap.add_argument("--sizes", default="900,2000", help="units per problem")
    ap.add_argument("--demo", type=int, default=30_000, help="households, per-community part")
    ap.add_argument("--big", type=int, default=1_000_000, help="households of the big city")
    ap.add_argument("--cpu", type=int, default=200_000, help="households, part cpu")
    ap.add_argument("--repeats", type=int, default=5, help="runs, part cpu")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    settings = Settings()
    text = []
    if "communities" in parts:
        rows, summary = per_community(args.demo, settings)
        text += [
            "",
            f"## Delineation (issue 15): every community of the {args.demo:,}-household demo "
            "city, gridgis vs spopt MaxPHeuristic",
            "",
            _command(args),
            "Per community: the same building cells (`unit_graph`, split_above=0), households "
            "and adjacency for both, timed in process; spopt threshold = 250, attributes = "
            "centroids, top_n = 2, one solve each; gridgis the median of 5 solves (about a "
            "millisecond each: on a shared, loaded machine one run is mostly preemption).",
            "",
            "| community | units | households | gridgis ms | spopt s | ratio | in 250–500 "
            "(gridgis / spopt) | mean PP (gridgis / spopt) |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            summary,
            "",
        ]
    if "problems" in parts or "big" in parts:
        text += _problems_and_big(args, parts, settings)
    if "cpu" in parts:  # not in the default parts: an A/B tool (run it on both commits)
        ts = cpu_seconds(args.cpu, args.repeats, settings)
        line = (
            f"{args.cpu:,}-household city, 1 process, {args.repeats} runs: CPU "
            f"{' '.join(f'{t:.2f}' for t in ts)} s, median {ts[len(ts) // 2]:.2f} s "
            f"(load {os.getloadavg()[0]:.1f})"
        )
        print(line)
        text += ["", line, ""]
    if args.append:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(text))
        print(f"appended to {RESULTS}")


def _command(args) -> str:
    cpus = len(os.sched_getaffinity(0))
    return (
        f"Command: `.venv/bin/python benchmarks/bench_delineate.py --parts {args.parts} "
        f"--append` ({platform.processor() or platform.machine()}, {cpus} CPUs shared with "
        f"other sessions, load average {os.getloadavg()[0]:.1f}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})."
    )


def _problems_and_big(args, parts: set[str], settings: Settings) -> list[str]:
    lo, hi = settings.grid.min_households, settings.grid.max_households
    lines = []
    if "problems" in parts:
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
    text = []
    if lines:
        text += [
            "",
            "## Delineation: gridgis vs spopt MaxPHeuristic on larger single problems",
            "",
            _command(args),
            "",
            "| problem | method | seconds | regions | within 250–500 | over 500 | under 250 | "
            "mean hh | mean Polsby-Popper | one polygon |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *lines,
            "",
        ]
    if "big" in parts:
        prof = profile_lines(150_000, settings)
        print("\n".join(prof))
        big_line = _big(args.big, settings)
        text += [
            "",
            f"## Delineation: the {args.big:,}-household demo city (issue 15: ≤ 15 s)",
            "",
            _command(args),
            "",
            "| big city | time | result | |",
            "|---|---|---|---|",
            big_line,
            "",
            "Where the time goes (cProfile, internal time, a 150,000-household city in one "
            "process; the big city runs the same per community in a fork pool):",
            "",
            "| function | seconds | share |",
            "|---|---|---|",
            *prof,
            "",
        ]
    return text


def reference_slowdown(seconds: float = 2.0) -> tuple[float, float]:
    """How much slower than a quiet machine this one runs right now: a fixed single-thread
    CPU workload (numpy sorts) timed in wall and process-CPU time. Returns (wall / CPU,
    CPU seconds). On an idle core wall ≈ CPU; with eight sessions on two cores each process
    gets a fraction of a core and wall / CPU says how much."""
    rng = np.random.default_rng(0)
    x = rng.random(1_000_000)
    w0, c0 = time.perf_counter(), time.process_time()
    while time.process_time() - c0 < seconds:
        np.sort(x)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return wall / cpu, cpu


def _cpu_now() -> float:
    """CPU seconds (user + system) of this process and of its waited-for children."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def _big(households: int, settings: Settings) -> str:
    """The big demo city end to end (delineate + assign + recount; make_city apart), with
    the CPU seconds of the parent and its fork-pool workers, and the machine's slowdown
    measured right before on a fixed reference workload."""
    from gridgis.assign import assign_all

    lo, hi = settings.grid.min_households, settings.grid.max_households
    t0 = time.perf_counter()
    big = make_city(households=households, seed=7, settings=settings)
    t_make = time.perf_counter() - t0
    slow, _ = reference_slowdown()
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu_now()
    res = delineate(big.layers, settings)
    t_del, c_del = time.perf_counter() - t0, _cpu_now() - c0
    layers = dict(big.layers)
    layers["buildings"] = res.buildings
    assigned = assign_all(layers, res.grids, settings)
    grids = recount(assigned.grids, assigned.buildings, settings)
    t_all = time.perf_counter() - t0
    r_ = grids[grids["kind"] == "residential"]
    inr = r_["households"].between(lo, hi).mean()
    line = (
        f"| {households:,}-household demo city ({len(big.layers['buildings']):,} "
        f"buildings, {len(big.layers['communities'])} communities) | "
        f"{t_del:.1f} s delineate ({c_del:.1f} CPU s, parent + workers; reference "
        f"workload {slow:.1f}× slower than its CPU time, load {load:.1f}: ≈ "
        f"{t_del / slow:.1f} s on a quiet machine), {t_all:.1f} s delineate + assign | "
        f"{len(grids):,} grids, {inr:.1%} residential within {lo}–{hi}, "
        f"{int((grids['flags'] != '').sum())} flagged, mean PP "
        f"{grids['polsby_popper'].mean():.3f} | make_city {t_make:.1f} s |"
    )
    print(line)
    return line


if __name__ == "__main__":
    main()
