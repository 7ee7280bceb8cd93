"""Benchmark the foundation beside its peers, in one run.

* GCJ-02 / BD-09 transforms: gridgis (vectorised numpy, iterative inverse) beside the
  PyPI package ``coord-convert`` (per point, pure Python), on random points across China;
  also the largest disagreement in metres.
* Workspace writes and reads: ``GeoPackageStore.write_many`` (atomic: scratch copy, one
  rename, folder lock, metadata) and ``read`` (canonical dtypes) beside plain
  ``GeoDataFrame.to_file`` / ``geopandas.read_file`` of the same layers into a GeoPackage
  (not atomic, no metadata).

    .venv/bin/python benchmarks/bench_foundation.py --points 1000000 --households 300000

Needs coord-convert (dev extra). Wall clock and process CPU time are both printed; on a
shared machine the CPU ratio is the fair one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
from coord_convert import transform as cc

from gridgis import crs
from gridgis.store import open_store
from gridgis.synth import make_city

GEOD = pyproj.Geod(ellps="WGS84")


def timed(func, *args):
    w0, c0 = time.perf_counter(), time.process_time()
    out = func(*args)
    return out, time.perf_counter() - w0, time.process_time() - c0


def per_point(func, lon, lat):
    res = [func(a, b) for a, b in zip(lon.tolist(), lat.tolist(), strict=True)]
    arr = np.asarray(res)
    return arr[:, 0], arr[:, 1]


def row(step: str, ours: tuple[float, float], peer: tuple[float, float], note: str = "") -> str:
    return (
        f"| {step} | {ours[0]:.3f} s ({ours[1]:.3f} s CPU) | {peer[0]:.3f} s "
        f"({peer[1]:.3f} s CPU) | {peer[0] / ours[0]:.1f}× wall, "
        f"{peer[1] / max(ours[1], 1e-9):.1f}× CPU | {note} |"
    )


def bench_crs(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    lon = rng.uniform(73.5, 135.0, n)
    lat = rng.uniform(18.2, 53.5, n)
    rows = []
    (g_lon, g_lat), *t_ours = timed(crs.wgs84_to_gcj02, lon, lat)
    (p_lon, p_lat), *t_peer = timed(per_point, cc.wgs2gcj, lon, lat)
    diff = np.max(np.abs(np.r_[g_lon - p_lon, g_lat - p_lat]))
    rows.append(row(f"WGS84→GCJ-02, {n:,} points", t_ours, t_peer, f"max difference {diff:.1e}°"))
    (w_lon, w_lat), *t_ours = timed(crs.gcj02_to_wgs84, g_lon, g_lat)
    (q_lon, q_lat), *t_peer = timed(per_point, cc.gcj2wgs, g_lon, g_lat)
    ours_err = GEOD.inv(lon, lat, w_lon, w_lat)[2].max()
    peer_err = GEOD.inv(lon, lat, q_lon, q_lat)[2].max()
    rows.append(
        row(
            f"GCJ-02→WGS84 (inverse), {n:,} points",
            t_ours,
            t_peer,
            f"worst round trip {ours_err * 1000:.2f} mm vs {peer_err * 1000:.1f} mm",
        )
    )
    (b_lon, b_lat), *t_ours = timed(crs.wgs84_to_bd09, lon, lat)
    (c_lon, c_lat), *t_peer = timed(per_point, cc.wgs2bd, lon, lat)
    diff = np.max(np.abs(np.r_[b_lon - c_lon, b_lat - c_lat]))
    rows.append(row(f"WGS84→BD-09, {n:,} points", t_ours, t_peer, f"max difference {diff:.1e}°"))
    (v_lon, v_lat), *t_ours = timed(crs.bd09_to_wgs84, b_lon, b_lat)
    (u_lon, u_lat), *t_peer = timed(per_point, cc.bd2wgs, b_lon, b_lat)
    ours_err = GEOD.inv(lon, lat, v_lon, v_lat)[2].max()
    peer_err = GEOD.inv(lon, lat, u_lon, u_lat)[2].max()
    rows.append(
        row(
            f"BD-09→WGS84 (inverse), {n:,} points",
            t_ours,
            t_peer,
            f"worst round trip {ours_err * 1000:.2f} mm vs {peer_err * 1000:.1f} mm "
            f"(peer's BD step is one-shot)",
        )
    )
    return rows


def bench_store(households: int) -> list[str]:
    city = make_city(households=households)
    layers = {k: v for k, v in city.layers.items() if isinstance(v, gpd.GeoDataFrame)}
    rows_total = sum(len(v) for v in layers.values())
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        ws_path = Path(tmp) / "ws.gpkg"
        plain = Path(tmp) / "plain.gpkg"
        ws = open_store(ws_path)

        def ours_write():
            ws.write_many(layers, params=city.params)

        def peer_write():
            for name, frame in layers.items():
                frame.to_file(plain, layer=name, driver="GPKG", engine="pyogrio")

        _, *t_ours = timed(ours_write)
        _, *t_peer = timed(peer_write)
        out.append(
            row(
                f"write {len(layers)} layers, {rows_total:,} rows ({households:,} households)",
                t_ours,
                t_peer,
                "gridgis: scratch copy + fsync + rename + metadata",
            )
        )
        # a second write replaces one layer in a workspace that already holds the city:
        # gridgis copies the whole file first, the peer writes in place
        _, *t_ours = timed(lambda: ws.write("roads", layers["roads"]))
        _, *t_peer = timed(
            lambda: layers["roads"].to_file(plain, layer="roads", driver="GPKG", engine="pyogrio")
        )
        size_mb = ws_path.stat().st_size / 1e6
        out.append(
            row(
                f"replace roads in a {size_mb:.0f} MB workspace",
                t_ours,
                t_peer,
                "cost of atomicity: copy of the file",
            )
        )

        def ours_read():
            return [ws.read(n) for n in layers]

        def peer_read():
            return [gpd.read_file(plain, layer=n, engine="pyogrio") for n in layers]

        _, *t_ours = timed(ours_read)
        _, *t_peer = timed(peer_read)
        out.append(row("read all layers back", t_ours, t_peer, "gridgis restores canonical dtypes"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--households", type=int, default=300_000)
    args = ap.parse_args()
    print("| step | gridgis | peer | peer / gridgis | note |")
    print("|---|---|---|---|---|")
    for line in bench_crs(args.points):
        print(line, flush=True)
    for line in bench_store(args.households):
        print(line, flush=True)


if __name__ == "__main__":
    main()
