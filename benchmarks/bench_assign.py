"""Time gridgis assignment and audit on the 1,000,000-household demo city, beside the
plain geopandas way (sjoin for points, overlay + largest piece for polygons).

    .venv/bin/python benchmarks/bench_assign.py --households 1000000

Grids: a lattice of squares sized for ~375 households each, clipped to the communities
(about as many grids as delineation makes). Prints timings, ratios and agreement.
"""

from __future__ import annotations

import argparse
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.assign import assign_all
from gridgis.audit import audit_grids
from gridgis.crs import metric_crs_for
from gridgis.standards import Settings
from gridgis.synth import make_city


def lattice_grids(communities: gpd.GeoDataFrame, households: int, target: int) -> gpd.GeoDataFrame:
    crs = metric_crs_for(communities)
    cm = communities.to_crs(crs)
    cell = float(np.sqrt(cm.area.sum() / max(1, households / target)))
    rows = []
    for comm in cm.itertuples():
        x0, y0, x1, y1 = comm.geometry.bounds
        xs = np.arange(x0, x1, cell)
        ys = np.arange(y1, y0, -cell)
        boxes = [shapely.box(x, y - cell, x + cell, y) for y in ys for x in xs]
        pieces = shapely.intersection(np.array(boxes, dtype=object), comm.geometry)
        pieces = [p for p in pieces if p.area > 1.0]
        for i, p in enumerate(pieces, 1):
            rows.append(
                {
                    "grid_code": f"{comm.community_code}{i:03d}",
                    "community_code": comm.community_code,
                    "geometry": p,
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs("EPSG:4326")


def peer_assign(layers: dict, grids: gpd.GeoDataFrame) -> dict[str, pd.Series]:
    """The usual geopandas way: sjoin(within) for points, overlay for polygons."""
    crs = metric_crs_for(grids)
    g = grids[["grid_code", "geometry"]]
    out = {}
    pts = layers["addresses"][["address_id", "geometry"]]
    j = gpd.sjoin(pts, g, predicate="within", how="left")
    j = j.sort_values("grid_code").groupby(level=0).first()
    out["addresses"] = j["grid_code"].reindex(pts.index)
    for name, key in (("buildings", "building_id"), ("institutions", "unit_id")):
        f = layers[name][[key, "geometry"]].to_crs(crs)
        inter = gpd.overlay(f, g.to_crs(crs), how="intersection", keep_geom_type=True)
        inter["a"] = inter.area
        top = inter.sort_values(["a", "grid_code"], ascending=[False, True]).drop_duplicates(key)
        out[name] = f[key].map(top.set_index(key)["grid_code"])
    fac = layers["facilities"][["facility_id", "geometry"]]
    j = gpd.sjoin(fac, g, predicate="within", how="left")
    out["facilities"] = j.sort_values("grid_code").groupby(level=0).first()["grid_code"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    settings = Settings()
    t = time.perf_counter()
    city = make_city(households=args.households, seed=args.seed, settings=settings)
    grids = lattice_grids(
        city.layers["communities"], args.households, settings.grid.target_households
    )
    layers = city.layers
    print(
        f"city: {args.households:,} households, {len(layers['buildings']):,} buildings, "
        f"{len(layers['addresses']):,} addresses, {len(layers['facilities']):,} facilities, "
        f"{len(layers['institutions']):,} institutions, {len(grids):,} grids "
        f"(made in {time.perf_counter() - t:.1f} s)"
    )

    t, c = time.perf_counter(), time.process_time()
    res = assign_all(layers, grids, settings)
    t_ours, c_ours = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    peer = peer_assign(layers, grids)
    t_peer, c_peer = time.perf_counter() - t, time.process_time() - c
    agree = []
    for name in ("buildings", "addresses", "institutions", "facilities"):
        ours = res[name]["grid_code"].astype(object).where(res[name]["grid_code"].notna())
        theirs = peer[name].reindex(ours.index).astype(object)
        both = ours.notna() & theirs.notna()
        agree.append(
            f"{name} {float((ours[both] == theirs[both]).mean()):.4%} "
            f"(ours {int(ours.notna().sum()):,}, peer {int(theirs.notna().sum()):,})"
        )
    print(
        f"assign_all: {t_ours:.2f} s wall ({c_ours:.2f} s CPU)   geopandas sjoin+overlay: "
        f"{t_peer:.2f} s wall ({c_peer:.2f} s CPU)   ratio {t_peer / t_ours:.1f}x wall, "
        f"{c_peer / c_ours:.1f}x CPU"
    )
    print("  agreement where both assign: " + "; ".join(agree))

    t, c = time.perf_counter(), time.process_time()
    audit = audit_grids(grids, layers, settings)
    t_audit, c_audit = time.perf_counter() - t, time.process_time() - c
    counts = audit.findings["check"].value_counts().to_dict()
    print(
        f"audit_grids: {t_audit:.2f} s wall ({c_audit:.2f} s CPU) for {len(grids):,} grids; "
        f"findings {counts}"
    )


if __name__ == "__main__":
    main()
