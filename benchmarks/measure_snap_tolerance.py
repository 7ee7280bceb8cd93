"""How far real dead ends lie from the next road: the measurement behind
``network.snap_tolerance_m`` and ``network.extend_dangle_m``.

Usage::

    .venv/bin/python benchmarks/measure_snap_tolerance.py [--append]

For the Nanjing OpenStreetMap extract (../shared/data, correctly noded by its mappers)
and the demo city, the network is built with the repair off; for every dead end (a node
with one edge) the distance to the nearest road line not touching it is taken. A
tolerance that joins few real dead ends but reaches CAD slips (centimetres to a metre) is
the one to choose.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import shapely

from gridgis.network import build_network
from gridgis.standards import Settings
from gridgis.synth import make_city

NANJING = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "nanjing-xinjiekou-osm"
    / "nanjing_osm_bbox.osm.pbf"
)
STEPS = (0.01, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)


def dead_end_gaps(roads) -> np.ndarray:
    off = Settings().override({"network.snap_tolerance_m": 0.0, "network.extend_dangle_m": 0.0})
    net = build_network(roads, off)
    deg = np.bincount(np.r_[net.edge_u, net.edge_v], minlength=net.n_nodes)
    dead = np.flatnonzero(deg == 1)
    pts = shapely.points(net.node_xy[dead])
    p, e = net.tree.query(pts, predicate="dwithin", distance=20.0)
    own = (net.edge_u[e] == dead[p]) | (net.edge_v[e] == dead[p])
    p, e = p[~own], e[~own]
    d = np.full(len(dead), np.inf)
    np.minimum.at(d, p, shapely.distance(pts[p], net.edge_geom[e]))
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args()
    rows = []
    sources = [("demo city, 30,000 households", make_city(30_000, walls=False).layers["roads"])]
    if NANJING.exists():
        from gridgis.io.osm import read_osm

        sources.append(("Nanjing OSM extract", read_osm(NANJING)["roads"]))
    for name, roads in sources:
        d = dead_end_gaps(roads)
        within = " | ".join(f"{int((d <= s).sum())}" for s in STEPS)
        nearest = ", ".join(f"{x:.2g}" for x in np.sort(d[np.isfinite(d)])[:6])
        rows.append(f"| {name} | {len(d)} | {within} | {nearest} |")
        print(rows[-1])
    if args.append:
        head = " | ".join(f"≤ {s:g} m" for s in STEPS)
        text = (
            "\\n## Topology repair: how far real dead ends lie from the next road (issue 13)\\n\\n"
            "Command: `.venv/bin/python benchmarks/measure_snap_tolerance.py --append` "
            "(network built with the repair off; dead end = node with one edge; distance to "
            "the nearest road line not touching it).\\n\\n"
            f"| roads | dead ends | {head} | nearest (m) |\\n"
            f"|---|---|{'---|' * len(STEPS)}---|\\n" + "\\n".join(rows) + "\\n\\n"
            "Chosen: `network.snap_tolerance_m` = 1 m (joins the two Nanjing mapping slips, "
            "0.08 m and 0.20 m, and CAD gaps up to a metre; the next real dead end is 1.31 m "
            "away), `network.extend_dangle_m` = 2 m (straight ahead only). The demo city's "
            "dead ends are T-junctions missed by floating-point error after reprojection.\\n"
        )
        with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as fh:
            fh.write(text)
        print("appended to benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
