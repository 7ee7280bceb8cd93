"""Grid edits (issue 16, point 6): time to preview, save (refresh included) and undo a
merge of two neighbouring residential grids on the demo city.

    PYTHONPATH=$PWD python benchmarks/bench_edits.py 10000 100000
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from gridgis import workflows
from gridgis.standards import DEFAULT
from gridgis.store import GeoPackageStore
from gridgis.synth import make_city
from gridgis.workflows import edits


def one(households: int, folder: Path) -> str:
    city = make_city(households=households, seed=7)
    store = GeoPackageStore(folder / f"city-{households}.gpkg")
    store.write_many(city.layers, params=city.params)
    workflows.delineate(store, DEFAULT, effective="2025-01-01")
    g = store.read("grids").to_crs("EPSG:4326").reset_index(drop=True)
    res = (g["kind"] == "residential").to_numpy()
    pair = None
    for i in range(len(g)):
        near = g.sindex.query(g.geometry[i], predicate="intersects")
        same = [
            j
            for j in near
            if j != i and res[i] and res[j] and g["community_code"][j] == g["community_code"][i]
        ]
        if same:
            pair = [str(g["grid_code"][i]), str(g["grid_code"][same[0]])]
            break
    edit = {"op": "merge", "grids": pair}
    t = time.perf_counter()
    edits.preview_edit(store, DEFAULT, edit)
    preview = time.perf_counter() - t
    t = time.perf_counter()
    edits.apply_edit(store, DEFAULT, edit)
    apply = time.perf_counter() - t
    t = time.perf_counter()
    edits.undo_last(store, DEFAULT)
    undo = time.perf_counter() - t
    n_b = store.info("buildings").rows
    store.close()
    return f"| {households:,} | {len(g):,} | {n_b:,} | {preview:.2f} | {apply:.2f} | {undo:.2f} |"


def main(sizes: list[int]) -> None:
    print("| households | grids | buildings | preview s | save s | undo s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            print(one(n, Path(tmp)), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000])
