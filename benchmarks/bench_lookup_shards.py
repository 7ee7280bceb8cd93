"""Batch address lookup on shards (each worker the index of its districts) beside the
single-process :meth:`gridgis.lookup.Lookup.addresses`, on a demo workspace.

Usage::

    .venv/bin/python benchmarks/bench_lookup_shards.py --workspace /work/big/city20m.gpkg
        [--workers 2,4] [--limit N] [--append]

The queries are every address of the workspace rewritten as people type them (栋 → 幢,
full-width digits), in stored order (``--limit`` keeps the first N). Single process: the
Lookup built from addresses and grids, then ``addresses(texts)``; cluster: a LocalCluster
of each ``--workers`` count of processes running
:func:`gridgis.partitioned.lookup_addresses_partitioned` (one shard per worker). Wall,
CPU (user + system; on the cluster the client with the scheduler plus every worker) and
peak resident memory sampled every 50 ms, as ``benchmarks/bench_cluster.py`` measures
them (its helpers are used); both tables compared exactly.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cluster import GB, run_cluster, run_single, same  # noqa: E402

from gridgis import partitioned as P  # noqa: E402
from gridgis.lookup import Lookup  # noqa: E402
from gridgis.store import open_store  # noqa: E402

ANSWERED: dict[str, dict] = {}


def _shown(spec: str, result):
    ANSWERED[spec] = result.attrs["cluster"]["answered_by"]
    print("cluster run:", result.attrs.get("cluster"), flush=True)
    return result


def _table(ref: dict, rows: list[dict], workspace: str, n: int, cmd: str, title: str) -> str:
    name = next(iter(ref))
    _r, wall, gb, cpu, load = ref[name]
    lines = [
        f"\n### {title}: {workspace}, {name}\n",
        f"Command: `{cmd}`. Machine: {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores shared with other sessions, "
        f"{psutil.virtual_memory().total / GB:.0f} GB; one run each (noisy). The queries: "
        f"every address of the workspace as people type it (栋 → 幢, full-width digits), "
        f"{n:,} texts. Single process: `Lookup(addresses, grids).addresses(texts)` (index "
        "built in the run). Cluster: `lookup_addresses_partitioned` on a LocalCluster, one "
        "shard of whole districts per worker (built in the run). Wall and CPU seconds "
        "(user + system; on the cluster the client with the scheduler plus every worker); "
        "peak resident memory sampled every 50 ms (the single process and the client also "
        "hold the layers read: addresses, grids, communities; the client also holds the "
        "single-process table for the comparison). `equal`: the tables are equal, every "
        "column, row for row, exactly (`assert_frame_equal(check_exact=True)`). "
        "`answered by`: distinct queries answered by one shard / by several (matched again "
        "on the rows they looked up) / by the fuzzy round.\n",
        "| run | wall s | CPU s | peak GB per process | client GB | load | equal | answered by |",
        "|---|---|---|---|---|---|---|---|",
        f"| single process | {wall:.1f} | {cpu:.1f} | {gb / GB:.2f} | - "
        f"| {load[0]:.1f}→{load[1]:.1f} | reference | - |",
    ]
    for r in rows:
        cl = r["cluster_load"]
        by = ANSWERED.get(r["cluster"], {})
        lines.append(
            f"| {r['cluster']} | {r['cluster_s']:.1f} | {r['cluster_cpu']:.1f} "
            f"| {' / '.join(f'{g:.2f}' for g in r['worker_gb'])} | {r['client_gb']:.2f} "
            f"| {cl[0]:.1f}→{cl[1]:.1f} | {'yes' if r['equal'] else 'NO'} "
            f"| {by.get('one shard', 0):,} / {by.get('several shards', 0):,} / "
            f"{by.get('fuzzy', 0):,} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--workers", default="2", help="worker counts, e.g. 2,4")
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

    def single():
        return Lookup(addresses=layers["addresses"], grids=layers["grids"]).addresses(texts)

    ref = run_single([(name, single, None, same)])
    rows = []
    for w in args.workers.split(","):
        spec = f"local:{w}"
        todo = [
            (
                name,
                single,
                lambda c, spec=spec: _shown(spec, P.lookup_addresses_partitioned(c, layers, texts)),
                same,
            )
        ]
        rows += run_cluster(todo, ref, spec)
    cmd = "PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_lookup_shards.py " + " ".join(
        sys.argv[1:]
    )
    text = _table(ref, rows, args.workspace, len(texts), cmd, args.title)
    print(text)
    if args.append:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        with results.open("a", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
