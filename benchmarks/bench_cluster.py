"""Partitioned runs on Dask beside the single-process reference, on the demo city.

Usage::

    .venv/bin/python benchmarks/bench_cluster.py --households 1000000 [--workers 2]
        [--nodes 4 --node-memory 1.5GB] [--append]

For each analysis (delineate, assign, coverage, batch address lookup): wall time of the
single-process run (this process), then of the partitioned run on a LocalCluster of
``--workers`` worker processes (one thread each), the speed-up, and peak memory: resident
set size sampled every 50 ms with psutil, of this process in the single-process run and of
each worker process (the largest of them) and of the client in the cluster run. Every
partitioned result is compared with the single-process one, layer by layer, row for row,
exactly (``pandas.testing.assert_frame_equal(check_exact=True)``); the table says so.

``--nodes N --node-memory M`` adds a run on a LocalCluster of N worker processes with a
per-worker memory limit M (Dask pauses a worker at 80% and restarts it at 95% of it),
standing in for N small machines.

CPU seconds (user + system) are counted too: of this process and its reaped children
(delineation's own fork pool) for the single-process run; of the client (which also runs
the LocalCluster's scheduler) and every worker process for the cluster run. The 1-minute
load average before and after each row shows how busy the shared machine was. Above
``demo.district_households`` households the city is a province of demo cities
(:func:`gridgis.province.make_province`), as ``gridgis demo`` builds it.

``--single-only`` / ``--cluster-only`` run one side (e.g. when the machine's memory
does not hold both results at 20,000,000 households).

The machine is shared (2 cores, 8 sessions at the time of the recorded runs): timings
are one run each and noisy; the speed-up on 2 cores is bounded by 2.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from gridgis import partitioned as P
from gridgis.assign import assign_all
from gridgis.cluster import open_client
from gridgis.coverage import run_coverage
from gridgis.delineate import delineate
from gridgis.lookup import Lookup
from gridgis.standards import DEFAULT
from gridgis.synth import make_city

GB = 1024**3


class Peak:
    """Peak RSS of some processes, sampled in a thread every ``every`` s."""

    def __init__(self, pids: list[int], every: float = 0.05) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.peak = {p.pid: p.memory_info().rss for p in self.procs}
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in self.procs:
                try:
                    self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(self.every)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pids: list[int] | None = None) -> float:
    """User + system CPU seconds of ``pids`` (psutil), or of this process and its reaped
    children (resource) when ``pids`` is None."""
    if pids is None:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def load1() -> float:
    """The machine's 1-minute load average."""
    return os.getloadavg()[0]


SUMMED = ("walk_m", "walk_min")
"""Summed walking distances: equal up to the order edge lengths were added in."""
MAX_DIFF = {"value": 0.0}


def same(got, ref) -> bool:
    """Exactly equal, but for walk_m / walk_min (largest difference kept in MAX_DIFF)."""
    got = pd.DataFrame(got).reset_index(drop=True)
    ref = pd.DataFrame(ref).reset_index(drop=True)
    summed = [c for c in SUMMED if c in ref.columns]
    try:
        pd.testing.assert_frame_equal(
            got.drop(columns=summed), ref.drop(columns=summed), check_exact=True
        )
        for col in summed:
            a, b = got[col].to_numpy(), ref[col].to_numpy()
            assert (np.isnan(a) == np.isnan(b)).all(), col
            d = float(np.nanmax(np.abs(a - b))) if len(a) else 0.0
            MAX_DIFF["value"] = max(MAX_DIFF["value"], d)
            assert d <= 1e-6, (col, d)
        return True
    except AssertionError as exc:
        print("   DIFFERENT:", str(exc)[:300])
        return False


def delineate_entry(layers: dict):
    """(name, single-process callable, partitioned callable, comparison) of delineate."""

    def cmp_delineate(a, b):
        return all(same(getattr(a, k), getattr(b, k)) for k in ("grids", "buildings", "findings"))

    return (
        "delineate",
        lambda: delineate(layers, issued_at="2026-01-01"),
        lambda c: P.delineate_partitioned(c, layers, issued_at="2026-01-01"),
        cmp_delineate,
    )


def analyses(layers: dict, grids):
    """(name, single-process callable, partitioned callable, comparison) of assign,
    coverage and batch lookup, on the grids of delineate."""
    assigned = {**layers, **assign_all(layers, grids).layers()}
    names = ("addresses", "buildings", "grids", "communities", "streets", "staff")
    lk = {n: assigned.get(n) for n in names}
    texts = list(assigned["addresses"]["text"])
    cov_layers = {**layers, "grids": grids}

    def cmp_assign(a, b):
        return all(same(a.layers()[k], b.layers()[k]) for k in b.layers())

    def cmp_coverage(a, b):
        return all(same(a.layers[k], b.layers[k]) for k in b.layers)

    return [
        (
            "assign",
            lambda: assign_all(layers, grids),
            lambda c: P.assign_partitioned(c, layers, grids),
            cmp_assign,
        ),
        (
            "coverage",
            lambda: run_coverage(cov_layers),
            lambda c: P.coverage_partitioned(c, cov_layers),
            cmp_coverage,
        ),
        (
            f"lookup ({len(texts):,} addresses)",
            lambda: Lookup(**lk).addresses(texts),
            lambda c: P.lookup_addresses_partitioned(c, lk, texts),
            same,
        ),
    ]


def run_single(todo) -> dict:
    out = {}
    me = os.getpid()
    for name, single, _, _ in todo:
        gc.collect()
        load0, cpu0 = load1(), cpu_seconds()
        with Peak([me]) as peak:
            t = time.perf_counter()
            result = single()
            wall = time.perf_counter() - t
        cpu = cpu_seconds() - cpu0
        out[name] = (result, wall, peak.peak[me], cpu, (load0, load1()))
        print(
            f"single   {name}: {wall:.1f} s, {cpu:.1f} CPU s, peak {peak.peak[me] / GB:.2f} GB, "
            f"load {load0:.1f}→{load1():.1f}",
            flush=True,
        )
    return out


def run_cluster(todo, ref: dict, spec: str, memory_limit=None) -> list[dict]:
    rows = []
    with open_client(spec, memory_limit=memory_limit) as client:
        workers = sorted(client.run(os.getpid).values())
        me = os.getpid()
        for name, _single, partitioned, compare in todo:
            gc.collect()
            load0, cpu0 = load1(), cpu_seconds([me, *workers])
            with Peak([me, *workers]) as peak:
                t = time.perf_counter()
                result = partitioned(client)
                wall = time.perf_counter() - t
            cpu = cpu_seconds([me, *workers]) - cpu0
            equal = compare(result, ref[name][0]) if name in ref else None
            del result
            per_worker = [peak.peak[w] / GB for w in workers]
            print(
                f"{spec:9s} {name}: {wall:.1f} s, {cpu:.1f} CPU s, worker peaks "
                f"{'/'.join(f'{g:.2f}' for g in per_worker)} GB, "
                f"client {peak.peak[me] / GB:.2f} GB, load {load0:.1f}→{load1():.1f}, "
                f"equal={equal}",
                flush=True,
            )
            single = ref.get(name, (None, float("nan"), float("nan"), float("nan"), (0, 0)))
            rows.append(
                {
                    "analysis": name,
                    "single_s": single[1],
                    "single_cpu": single[3],
                    "single_gb": single[2] / GB,
                    "single_load": single[4],
                    "cluster": spec + (f" ({memory_limit}/worker)" if memory_limit else ""),
                    "cluster_s": wall,
                    "cluster_cpu": cpu,
                    "cluster_load": (load0, load1()),
                    "speedup": single[1] / wall,
                    "worker_gb": per_worker,
                    "client_gb": peak.peak[me] / GB,
                    "equal": equal,
                }
            )
    return rows


def table(rows: list[dict], households: int, cmd: str, title: str) -> str:
    lines = [
        f"\n### {title}: {households:,} households\n",
        f"Command: `{cmd}`. Machine: {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores shared with other sessions, "
        f"{psutil.virtual_memory().total / GB:.0f} GB; one run each (noisy). Wall and CPU "
        "seconds (user + system: this process and its children single-process; client with "
        "the scheduler plus every worker on the cluster); load: the 1-minute load average "
        "before→after the run. Peak memory is the resident set sampled every 50 ms: of this "
        "process single-process, of each worker process and of the client on the cluster. "
        "`equal`: every layer of the partitioned result equals the single-process one, "
        "row for row, exactly — but walk_m and walk_min, which may differ in the last bits "
        "where two paths are equally short (largest difference of walk_m: "
        f"{MAX_DIFF['value']:.1e} m).\n",
        "| analysis | single s | single CPU s | single GB | load | cluster | cluster s "
        "| cluster CPU s | speed-up | peak GB per worker | client GB | load | equal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sl, cl = r["single_load"], r["cluster_load"]
        equal = {True: "yes", False: "NO", None: "not compared"}[r["equal"]]
        lines.append(
            f"| {r['analysis']} | {r['single_s']:.1f} | {r['single_cpu']:.1f} "
            f"| {r['single_gb']:.2f} | {sl[0]:.1f}→{sl[1]:.1f} | {r['cluster']} "
            f"| {r['cluster_s']:.1f} | {r['cluster_cpu']:.1f} | {r['speedup']:.2f} "
            f"| {' / '.join(f'{g:.2f}' for g in r['worker_gb'])} | {r['client_gb']:.2f} "
            f"| {cl[0]:.1f}→{cl[1]:.1f} | {equal} |"
        )
    return "\n".join(lines) + "\n"


def single_rows(ref: dict) -> list[dict]:
    """Rows of a single-process-only run."""
    return [
        {
            "analysis": name,
            "single_s": wall,
            "single_cpu": cpu,
            "single_gb": gb / GB,
            "single_load": load,
            "cluster": "-",
            "cluster_s": float("nan"),
            "cluster_cpu": float("nan"),
            "cluster_load": (float("nan"), float("nan")),
            "speedup": float("nan"),
            "worker_gb": [],
            "client_gb": float("nan"),
            "equal": None,
        }
        for name, (_r, wall, gb, cpu, load) in ref.items()
    ]


def make_layers(households: int) -> dict:
    """The demo's data at this size: one demo city, or above ``demo.district_households``
    a province of demo cities as ``gridgis demo`` builds it."""
    from gridgis.workflows.demo import demo_districts

    districts = demo_districts(households, DEFAULT)
    if districts == 1:
        return make_city(households, seed=7).layers
    from gridgis.province import make_province

    return make_province(households, districts, seed=7)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nodes", type=int, default=0)
    ap.add_argument("--node-memory", default="1.5GB")
    ap.add_argument("--single-only", action="store_true")
    ap.add_argument("--cluster-only", action="store_true")
    ap.add_argument("--title", default="#19 cluster, session 4")
    ap.add_argument("--analyses", default="delineate,assign,coverage,lookup")
    ap.add_argument("--append", action="store_true")
    a = ap.parse_args()
    t = time.perf_counter()
    layers = make_layers(a.households)
    print(f"city: {a.households:,} households in {time.perf_counter() - t:.1f} s", flush=True)
    want = set(a.analyses.split(","))
    first = [delineate_entry(layers)]
    # the single-process delineation gives the grids the other analyses use
    ref = {} if a.cluster_only else run_single(first)
    grids = ref["delineate"][0].grids if ref else first[0][1]().grids
    todo = [t for t in first + analyses(layers, grids) if t[0].split(" ")[0] in want]
    if not a.cluster_only:
        ref.update(run_single([t for t in todo if t[0] not in ref]))
        ref = {k: v for k, v in ref.items() if k.split(" ")[0] in want}
    if a.single_only:
        rows = single_rows(ref)
    else:
        rows = run_cluster(todo, ref, f"local:{a.workers}")
        if a.nodes:
            rows += run_cluster(todo, ref, f"local:{a.nodes}", memory_limit=a.node_memory)
    cmd = (
        f"PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_cluster.py --households "
        f"{a.households} --workers {a.workers}"
        + (f" --nodes {a.nodes} --node-memory {a.node_memory}" if a.nodes else "")
        + (" --single-only" if a.single_only else "")
        + (" --cluster-only" if a.cluster_only else "")
        + (f" --analyses {a.analyses}" if a.analyses != "delineate,assign,coverage,lookup" else "")
        + " --append"
    )
    text = table(rows, a.households, cmd, a.title)
    print(text)
    if a.append:
        with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
