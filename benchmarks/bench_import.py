"""Benchmark: gridgis OpenStreetMap import beside pyrosm (the usual Python OSM reader).

The real Nanjing extract (../shared/data/nanjing-xinjiekou-osm) is tiled K x K times
(shifted copies with fresh ids) into a larger PBF, then read by

* gridgis: ``gridgis.io.read_source`` -> validated buildings (use, floors, households
  estimated), roads by class, facilities by category, green spaces, institutions;
* pyrosm: ``get_buildings`` + ``get_network("all")`` + ``get_pois`` + ``get_landuse`` +
  ``get_natural`` (raw tags only, no classification or validation).

Each is run ``--repeat`` times in this process; the best wall-clock and CPU (process) times
are printed with their ratios. On a shared machine the CPU-time ratio is the fair one.

    .venv/bin/python benchmarks/bench_import.py --tiles 6 --repeat 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import osmium

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SRC = DATA / "nanjing-xinjiekou-osm" / "nanjing_osm_bbox.osm.pbf"


def tile(src: Path, dst: Path, k: int) -> None:
    """Write k*k shifted copies of ``src`` (ids offset per copy) to ``dst``."""
    off = 10**10
    dlon, dlat = 0.036, 0.020  # a little more than the extract's size
    writer = osmium.SimpleWriter(str(dst))
    try:
        for i in range(k):
            for j in range(k):
                c = (i * k + j) * off
                for o in osmium.FileProcessor(str(src)):
                    if o.is_node():
                        loc = o.location
                        writer.add_node(
                            o.replace(
                                id=o.id + c, location=(loc.lon + i * dlon, loc.lat + j * dlat)
                            )
                        )
                    elif o.is_way():
                        writer.add_way(o.replace(id=o.id + c, nodes=[n.ref + c for n in o.nodes]))
                    elif o.is_relation():
                        writer.add_relation(
                            o.replace(
                                id=o.id + c,
                                members=[(m.type, m.ref + c, m.role) for m in o.members],
                            )
                        )
    finally:
        writer.close()


def best(func, repeat: int) -> tuple[float, float, object]:
    """Best wall-clock and best CPU seconds of ``repeat`` runs, and the last result."""
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        result = func()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiles", type=int, default=6, help="K: the extract is tiled K x K")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not SRC.exists():
        raise SystemExit(f"needs {SRC}")
    warnings.filterwarnings("ignore")
    from pyrosm import OSM

    from gridgis.io import read_source

    with tempfile.TemporaryDirectory() as tmp:
        pbf = Path(tmp) / f"nanjing_x{args.tiles * args.tiles}.osm.pbf"
        tile(SRC, pbf, args.tiles)
        size = pbf.stat().st_size / 1e6

        def run_gridgis():
            out = read_source(pbf)
            return {k: len(v.data) for k, v in out.items()}

        def run_pyrosm():
            osm = OSM(str(pbf))
            b = osm.get_buildings()
            r = osm.get_network(network_type="all")
            p = osm.get_pois(
                custom_filter={
                    "amenity": True,
                    "shop": True,
                    "leisure": True,
                    "highway": ["bus_stop"],
                }
            )
            lu = osm.get_landuse()
            nat = osm.get_natural()
            return {
                "buildings": len(b),
                "roads": len(r),
                "pois": len(p),
                "landuse": len(lu),
                "natural": len(nat),
            }

        w_g, c_g, n_g = best(run_gridgis, args.repeat)
        w_p, c_p, n_p = best(run_pyrosm, args.repeat)
    print(f"input: Nanjing extract tiled {args.tiles}x{args.tiles} = {size:.1f} MB PBF")
    print(f"gridgis read_source  wall {w_g:6.2f} s  cpu {c_g:6.2f} s  {n_g}")
    print(f"pyrosm (5 getters)   wall {w_p:6.2f} s  cpu {c_p:6.2f} s  {n_p}")
    print(
        f"ratio gridgis/pyrosm wall {w_g / w_p:6.2f}    cpu {c_g / c_p:6.2f}  (< 1: gridgis faster)"
    )


if __name__ == "__main__":
    main()
