"""Building a demo province: streamed into a GeoPackage district by district, in this
process or on a LocalCluster, beside the in-memory build (all districts, then one write).

Usage::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_province.py --households 5000000
        [--workers 2] [--in-memory] [--append]

For each way (``this process`` streamed; ``local:N`` streamed, districts built on N worker
processes; with ``--in-memory`` also :func:`gridgis.province.make_province` then one
``write_many``): wall seconds, CPU seconds (this process and its children, plus every
worker), peak resident set of this process and of each worker (psutil, every 50 ms), the
1-minute load average before→after, and the GeoPackage's size. The province is the one
``gridgis demo --households N`` writes (districts of ``demo.district_households``).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

from bench_cluster import GB, Peak, cpu_seconds, load1

from gridgis.cluster import open_client
from gridgis.province import make_province, write_province
from gridgis.standards import DEFAULT
from gridgis.store import GeoPackageStore
from gridgis.workflows.demo import demo_districts


def one(way: str, households: int, districts: int, folder: Path, workers: int) -> dict:
    path = folder / f"{way.replace(':', '_').replace(' ', '_')}.gpkg"
    path.unlink(missing_ok=True)
    store = GeoPackageStore(path)
    spec = f"local:{workers}" if way.startswith("local") else None
    gc.collect()
    with open_client(spec) as client:
        pids = [os.getpid()]
        wpids = sorted(client.run(os.getpid).values()) if client is not None else []
        load0 = load1()
        cpu0 = cpu_seconds() + cpu_seconds(wpids)
        with Peak(pids + wpids) as peak:
            t = time.perf_counter()
            if way == "in memory":
                layers, meta = make_province(households, districts, client=client)
                store.write_many(layers)
                store.set_meta(**{k: v for k, v in meta.items()})
                del layers
            else:
                write_province(store, households, districts, client=client)
            wall = time.perf_counter() - t
        cpu = cpu_seconds() + cpu_seconds(wpids) - cpu0
        row = {
            "way": way,
            "wall": wall,
            "cpu": cpu,
            "client_gb": peak.peak[os.getpid()] / GB,
            "worker_gb": [peak.peak[w] / GB for w in wpids],
            "load": (load0, load1()),
            "size_gb": path.stat().st_size / GB,
        }
    print(row, flush=True)
    path.unlink(missing_ok=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=5_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--in-memory", action="store_true")
    ap.add_argument("--append", action="store_true")
    a = ap.parse_args()
    districts = demo_districts(a.households, DEFAULT)
    ways = ["this process", f"local:{a.workers}"] + (["in memory"] if a.in_memory else [])
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        rows = [one(w, a.households, districts, Path(tmp), a.workers) for w in ways]
    cmd = (
        f"PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_province.py --households "
        f"{a.households} --workers {a.workers}" + (" --in-memory" if a.in_memory else "")
    )
    lines = [
        f"\n### #19 demo province build, session 4: {a.households:,} households, "
        f"{districts} districts\n",
        f"Command: `{cmd} --append`. Build and write only (no analyses); one run each on "
        "the shared 2-core machine. CPU: user + system of this process, its children and "
        "the workers; peak: resident set sampled every 50 ms.\n",
        "| way | wall s | CPU s | peak GB (this process) | peak GB per worker | load "
        "| GeoPackage GB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        workers = " / ".join(f"{g:.2f}" for g in r["worker_gb"]) or "-"
        lines.append(
            f"| {r['way']}{' (streamed)' if r['way'] != 'in memory' else ''} "
            f"| {r['wall']:.1f} | {r['cpu']:.1f} | {r['client_gb']:.2f} | {workers} "
            f"| {r['load'][0]:.1f}→{r['load'][1]:.1f} | {r['size_gb']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if a.append:
        with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
