"""The ledger formats exported in one process and partitioned on a LocalCluster.

Usage::

    gridgis demo --households 1000000 --out /tmp/part1m
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_cluster_export.py \\
        /tmp/part1m/demo.gpkg [--workers 2] [--formats csv,xlsx,...] [--append]

For each format (``gridgis export --format F``, with phone numbers), one fresh process
runs the single-process export (:func:`gridgis.export.export_workspace`) and another the
partitioned one, twice, on a LocalCluster of ``--workers`` worker processes started in it
(as ``--cluster local:N`` does). Layers are read before the clock starts. Wall time; CPU of
the process and every process it started and reaped (the workers; cluster start and stop
included); peak RSS of the process and the largest of its workers; "run": wall time with
the cluster already up, the first and the second run. Equal (both runs): CSV/GeoJSON byte
for byte, the workbook cell by cell (openpyxl), Shapefile/GeoPackage layers column by
column with geometry WKB (the GeoPackage's QGIS style table without its write time).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pandas as pd

FORMATS = ("csv", "xlsx", "geojson", "shp", "gpkg")


def _cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _run(workspace: str, fmt: str, out: str, workers: int, queue) -> None:
    """In a fresh process: one export, its figures put on ``queue``."""
    from gridgis.cli.common import read_present
    from gridgis.maps import MAP_LAYERS
    from gridgis.store import open_store

    with open_store(workspace) as store:
        layers = read_present(store, MAP_LAYERS)
    kw = dict(with_personal=True, city="示范")
    c0, t0 = _cpu(), time.perf_counter()
    run = None
    if workers:
        from gridgis import partitioned as P
        from gridgis.cluster import open_client

        with open_client(f"local:{workers}") as client:
            run = []
            for target in (out, out + "-again"):  # cold workers (imports), then warm
                t1 = time.perf_counter()
                got = P.export_partitioned(client, layers, fmt, target, **kw)
                run.append((time.perf_counter() - t1, got.cluster["runs"][0]["seconds"]))
    else:
        from gridgis.export import export_workspace

        export_workspace(layers, fmt, out, **kw)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rss_w = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    queue.put((wall, run, cpu, rss, rss_w))


def measure(workspace: str, fmt: str, out: Path, workers: int) -> tuple:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(workspace, fmt, str(out), workers, queue))
    proc.start()
    got = queue.get()
    proc.join()
    return got


def _layers(path: str) -> dict:
    import geopandas as gpd
    import pyogrio

    out = {}
    for name, _ in pyogrio.list_layers(path):
        frame = pyogrio.read_dataframe(path, layer=name)
        if name == "layer_styles":
            frame = frame.drop(columns="update_time")
        if isinstance(frame, gpd.GeoDataFrame):
            frame = pd.DataFrame(frame).assign(geometry=frame.geometry.to_wkb())
        out[name] = frame
    return out


def same(a: Path, b: Path) -> bool:
    """Every file of folder ``a`` equals its namesake in ``b`` (see the module doc)."""
    from openpyxl import load_workbook

    files = sorted(p for p in a.rglob("*") if p.is_file())
    if [p.name for p in files] != sorted(p.name for p in b.rglob("*") if p.is_file()):
        return False
    for pa in files:
        pb = b / pa.relative_to(a)
        if pa.suffix in (".csv", ".geojson"):
            ok = pa.read_bytes() == pb.read_bytes()
        elif pa.suffix == ".xlsx":

            def cells(p):
                return {ws.title: [[c.value for c in r] for r in ws.iter_rows()] for ws in p}

            ok = cells(load_workbook(pa)) == cells(load_workbook(pb))
        elif pa.suffix == ".zip":
            shp = pa.stem + ".shp"
            la, lb = _layers(f"/vsizip/{pa}/{shp}"), _layers(f"/vsizip/{pb}/{shp}")
            ok = all(la[k].equals(lb[k]) for k in la) and list(la) == list(lb)
            za, zb = zipfile.ZipFile(pa), zipfile.ZipFile(pb)
            ok = ok and za.namelist() == zb.namelist()
        else:
            la, lb = _layers(str(pa)), _layers(str(pb))
            ok = list(la) == list(lb) and all(la[k].equals(lb[k]) for k in la)
        if not ok:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workspace")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args()
    rows = []
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for fmt in args.formats.split(","):
            one = measure(args.workspace, fmt, Path(tmp) / fmt / "single", 0)
            many = measure(args.workspace, fmt, Path(tmp) / fmt / "cluster", args.workers)
            ok = all(
                same(Path(tmp) / fmt / "single", Path(tmp) / fmt / name)
                for name in ("cluster", "cluster-again")
            )
            rows.append((fmt, one, many, ok))
            print(fmt, one, many, ok, flush=True)
    load1 = os.getloadavg()
    cmd = f"PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_cluster_export.py {args.workspace}"
    text = table(rows, args.workers, cmd, load0, load1)
    print(text)
    if args.append:
        with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


def table(rows, workers: int, cmd: str, load0, load1) -> str:
    lines = [
        "## #19 partitioned export of the ledger formats (xlsx, csv, shp, gpkg, geojson)",
        "",
        f"`{cmd}` (the 1,000,000-household demo, 2,823 grids, 417 communities, 52 streets; "
        f"phone numbers included; Python {platform.python_version()}, {sys.platform}; "
        "2 cores shared with other sessions, and another process building a 50,000,000 "
        f"demo in the background: load average {load0[0]:.1f} before, {load1[0]:.1f} after; "
        "one run each, in a fresh process each). Wall and CPU seconds (CPU: the process and "
        "every process it started, cluster start and stop included); 'run 1': wall of the "
        "first export with the cluster up (workers import the export modules), 'run 2': "
        "the same export again on the same cluster, each with (in brackets) the wall of "
        "the blocks on the workers (sending, computing, gathering; the rest is the "
        "preparation and the writing here); peak RSS in GB of the process and of the "
        "largest worker. The local:N wall includes starting and stopping the cluster and "
        "both runs.",
        "",
        f"| format | single wall | single CPU | single peak | local:{workers} wall | run 1 "
        f"(blocks) | run 2 (blocks) | local:{workers} CPU | peak client / worker | equal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for fmt, (w1, _, c1, m1, _), (w2, runs, c2, m2, mw), ok in rows:
        (r1, b1), (r2, b2) = runs
        lines.append(
            f"| {fmt} | {w1:.1f} | {c1:.1f} | {m1:.2f} | {w2:.1f} | {r1:.1f} ({b1:.1f}) "
            f"| {r2:.1f} ({b2:.1f}) | {c2:.1f} | {m2:.2f} / {mw:.2f} | {'yes' if ok else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
