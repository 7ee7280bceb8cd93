"""Batch address lookup on shards (each worker the index of its districts) beside the
single-process :meth:`gridgis.lookup.Lookup.addresses`, on a demo workspace.

Usage::

    .venv/bin/python benchmarks/bench_lookup_shards.py --workspace /work/big/city20m.gpkg
        [--workers 2] [--limit N] [--append]

The queries are every address of the workspace rewritten as people type them (栋 → 幢,
full-width digits), in stored order (``--limit`` keeps the first N). Single process: the
Lookup built from addresses and grids, then ``addresses(texts)``; cluster: a LocalCluster
of ``--workers`` processes running
:func:`gridgis.partitioned.lookup_addresses_partitioned` (one shard per worker). Wall,
CPU (user + system; on the cluster the client with the scheduler plus every worker) and
peak resident memory sampled every 50 ms, as ``benchmarks/bench_cluster.py`` measures
them (its helpers are used); both tables compared exactly.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cluster import GB, run_cluster, run_single, same, table  # noqa: E402

from gridgis import partitioned as P  # noqa: E402
from gridgis.lookup import Lookup  # noqa: E402
from gridgis.store import open_store  # noqa: E402


def _shown(result):
    print("cluster run:", result.attrs.get("cluster"), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--title", default="#19 lookup on shards")
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    t = time.perf_counter()
    with open_store(Path(args.workspace)) as store:
        layers = {n: store.read(n) for n in ("addresses", "grids", "communities")}
    print(f"read {args.workspace}: {time.perf_counter() - t:.1f} s", flush=True)
    digits = str.maketrans("0123456789", "０１２３４５６７８９")
    texts = [t.replace("栋", "幢").translate(digits) for t in layers["addresses"]["text"]]
    if args.limit:
        texts = texts[: args.limit]
    name = f"lookup ({len(texts):,} of {len(layers['addresses']):,} addresses)"
    todo = [
        (
            name,
            lambda: Lookup(addresses=layers["addresses"], grids=layers["grids"]).addresses(texts),
            lambda c: _shown(P.lookup_addresses_partitioned(c, layers, texts)),
            same,
        )
    ]
    ref = run_single(todo)
    rows = run_cluster(todo, ref, f"local:{args.workers}")
    cmd = "PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_lookup_shards.py " + " ".join(
        sys.argv[1:]
    )
    text = table(rows, -1, cmd, args.title).replace(": -1 households", f": {args.workspace}")
    print(text)
    print(f"load at the end {os.getloadavg()[0]:.1f}; GB={GB}")
    if args.append:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        with results.open("a", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
