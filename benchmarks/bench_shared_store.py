"""Partitioned coverage on a shared PostGIS store: workers read and stage their own
partitions, against the client shipping every partition's data (issue 19, point 2).

Usage::

    .venv/bin/python benchmarks/bench_shared_store.py --households 1000000 [--append]

Builds the demo city, writes it into two schemas of a throwaway PostgreSQL server
(:mod:`gridgis.store.pgtemp`; or ``GRIDGIS_TEST_DATABASE_URL``), delineates and assigns it
once (single process) and copies the result to the second schema. Then, each in a fresh
process with a LocalCluster of 2 worker processes:

* ``shipped`` — what the coverage workflow did before: the client reads the layers,
  sends each partition its buildings, facilities, greens and network piece, gathers
  the results and writes every layer in one ``write_many``;
* ``shared`` — the workflow now: the client reads the layers, sends each partition a
  description (stored rows and boxes), the workers read their rows from PostGIS and
  stage their ``access`` rows (one transaction per partition), the client publishes
  the staged rows and the other layers in one transaction.

Peak RSS of the client and of each worker is sampled every 50 ms (psutil); CPU is the
process's user+system time. The two runs' layers are compared row for row. The plans of
a partition's reads (EXPLAIN on the 1M tables) are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

GB = 1024**3
HERE = Path(__file__).resolve().parent


def run_one(mode: str, url: str) -> dict:
    """One coverage run in this (fresh) process; returns its figures."""
    import psutil

    sys.path.insert(0, str(HERE))
    from bench_cluster import Peak

    from gridgis.cluster import open_client
    from gridgis.partitioned import coverage_partitioned
    from gridgis.partitioned.source import shared_run
    from gridgis.standards import DEFAULT
    from gridgis.store import open_store
    from gridgis.workflows.analyses import COVERAGE_INPUTS, _coverage_layers
    from gridgis.workflows.base import write_layers

    store = open_store(url, create=False)
    me = psutil.Process()
    with open_client("local:2") as client:
        pids = list(client.run(os.getpid).values())
        cpu0 = {p: psutil.Process(p).cpu_times() for p in pids}
        c0 = me.cpu_times()
        with Peak([os.getpid(), *pids]) as peak:
            t = time.perf_counter()
            layers = _coverage_layers(store, COVERAGE_INPUTS)
            read_s = time.perf_counter() - t
            if mode == "shipped":
                result = coverage_partitioned(client, layers, DEFAULT)
                t_write = time.perf_counter()
                write_layers(store, "coverage", result.layers, result.params)
            else:
                with shared_run(store, tuple(layers)) as run:
                    result = coverage_partitioned(client, layers, DEFAULT, shared=run)
                    t_write = time.perf_counter()
                    frames = {k: v for k, v in result.layers.items() if k not in result.staged}
                    store.publish(frames, result.staged, result.params)
            wall = time.perf_counter() - t
            write_s = time.perf_counter() - t_write
        c1 = me.cpu_times()
        cpu_w = {p: sum(psutil.Process(p).cpu_times()[:2]) - sum(cpu0[p][:2]) for p in pids}
    return {
        "mode": mode,
        "wall_s": wall,
        "read_s": read_s,
        "write_s": write_s,
        "client_cpu_s": sum(c1[:2]) - sum(c0[:2]),
        "workers_cpu_s": sum(cpu_w.values()),
        "client_peak_gb": peak.peak[os.getpid()] / GB,
        "worker_peak_gb": max(peak.peak[p] for p in pids) / GB,
        "access_rows": len(result.layers["access"]),
        "partitions": result.params["cluster"]["partitions"],
        "staging_left": store.staging(),
    }


def explain(url: str) -> list[str]:
    """The plans of a partition's reads on the 1M tables."""
    from gridgis.store import open_store

    store = open_store(url, create=False)
    b = store.read("communities")
    box = tuple(b.iloc[:3].total_bounds)
    codes = tuple(b["community_code"].iloc[:3])
    out = []
    for name, kw in (
        ("buildings", {"bbox": box}),
        ("grids", {"where_in": ("community_code", codes)}),
        ("buildings", {"rows": list(range(1000, 1400)), "bbox": box}),
    ):
        sql, args, _ = store.rows_query(name, **kw)
        with store._cursor() as cur:
            cur.execute("EXPLAIN " + sql, args)
            nodes = [r[0].strip() for r in cur.fetchall() if "Scan" in r[0] or "Cond" in r[0]]
            plan = " / ".join(re.sub(r"'[^']{40,}'", "'…'", n) for n in nodes)
        out.append(f"{name} {list(kw)}: {plan}")
    return out


def setup(households: int) -> tuple[str, str]:
    from gridgis import workflows
    from gridgis.standards import DEFAULT
    from gridgis.store import open_store
    from gridgis.store.pgtemp import fresh_workspace_url
    from gridgis.synth import make_city

    t = time.perf_counter()
    city = make_city(households=households, seed=7).layers
    urls = fresh_workspace_url(), fresh_workspace_url()
    first = open_store(urls[0])
    first.write_many(city)
    workflows.delineate(first, DEFAULT)
    second = open_store(urls[1])
    second.write_many({n: first.read(n) for n in first.layers()})
    print(f"setup: {time.perf_counter() - t:.0f} s", flush=True)
    return urls


def compare(urls: tuple[str, str]) -> bool:
    sys.path.insert(0, str(HERE))
    from bench_cluster import same

    from gridgis.store import open_store

    a, b = (open_store(u, create=False) for u in urls)
    names = ("access", "coverage", "coverage_gaps", "norms", "coverage_findings")
    return all(same(a.read(n), b.read(n)) for n in names if a.has(n))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--run", choices=["shipped", "shared"])
    ap.add_argument("--url")
    args = ap.parse_args()
    if args.run:
        print(json.dumps(run_one(args.run, args.url)))
        return
    urls = setup(args.households)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    got = {}
    for mode, url in (("shipped", urls[0]), ("shared", urls[1])):
        out = (
            subprocess.run(
                [sys.executable, __file__, "--run", mode, "--url", url],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        got[mode] = json.loads(out)
        print(mode, got[mode], flush=True)
    equal = compare(urls)
    plans = explain(urls[1])
    lines = [
        "",
        "## #19 shared store, session 4: partitioned coverage reading and writing PostGIS",
        "",
        f"`PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_shared_store.py --households "
        f"{args.households}` ({platform.node()}, 2 cores shared with other sessions: one run "
        "each, wall time noisy). LocalCluster of 2 worker processes; the workspace delineated "
        "first; each mode in a fresh process; peak RSS sampled every 50 ms.",
        "",
        "| mode | wall s | reading layers s | client CPU s | workers CPU s | client peak GB "
        "| worker peak GB | access rows | partitions |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, label in (
        ("shipped", "before: client ships the data, writes all"),
        ("shared", "workers read + stage, client publishes"),
    ):
        g = got[mode]
        lines.append(
            f"| {label} | {g['wall_s']:.1f} | {g['read_s']:.1f} | {g['client_cpu_s']:.1f} | "
            f"{g['workers_cpu_s']:.1f} | {g['client_peak_gb']:.2f} | {g['worker_peak_gb']:.2f} "
            f"| {g['access_rows']:,} | {g['partitions']} |"
        )
    lines += [
        "",
        f"Both runs' coverage layers equal row for row: {equal}; staging left after the "
        f"shared run: {got['shared']['staging_left'] or 'none'}.",
        "",
        "Plans of a partition's reads at this size (EXPLAIN):",
        "",
        *[f"- {p}" for p in plans],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
