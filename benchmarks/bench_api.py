"""Load benchmark of the HTTP API beside tipg, on loopback, with a bounded load generator.

What it does, in one run:

1. starts a throwaway PostgreSQL/PostGIS (``gridgis.store.pgtemp``), makes the demo city
   (``--households``) with grids, assignment and coverage, and writes it to a GeoPackage
   and to the PostGIS schema ``gridgis``;
2. serves it with ``gridgis serve --workers N`` for each N of ``--workers`` (each worker
   process loads the lookup index once, at start) on both backends, and serves the SAME
   PostGIS table ``gridgis.grids`` with tipg (from its own virtualenv, ``--tipg``);
3. drives each server with ``wrk`` (Debian package ``wrk``; fixed duration per cell,
   1/16/64 connections, requests cycling through 500 different points / boxes) for
   ``/lookup/point?lon=&lat=`` and ``/collections/grids/items?bbox=…&limit=10``
   (tipg: ``/collections/gridgis.grids/items?bbox=…&limit=10``);
4. prints p50 / p99 latency and requests/s per cell, and the gridgis/tipg ratios, as a
   Markdown table (``--results FILE`` appends it with the command line).

Example::

    .venv/bin/python benchmarks/bench_api.py --households 100000 --duration 5 \\
        --tipg /tmp/tipg-venv --results benchmarks/RESULTS.md

tipg: ``python3.11 -m venv /tmp/tipg-venv && /tmp/tipg-venv/bin/pip install tipg uvicorn``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.demo import demo_layers, fill_demo  # noqa: E402
from gridgis.store import open_store  # noqa: E402
from gridgis.store.pgtemp import TempPostgres, free_port  # noqa: E402

LUA = """
local paths = {%s}
local i = math.random(#paths)
request = function()
  i = (i %% #paths) + 1
  return wrk.format("GET", paths[i])
end
"""


def start(cmd: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen:
    """Start a server process and wait until ``probe`` answers 200."""
    log = tempfile.NamedTemporaryFile(prefix="bench-api-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"server did not start: {' '.join(cmd)}\n{Path(log.name).read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def run_wrk(port: int, script: Path, conns: int, duration: int) -> dict[str, float]:
    threads = 1 if conns == 1 else 2
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(conns),
            "-d",
            f"{int(duration)}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), "
        r"timeout (\d+)",
        out,
    )
    return {
        "p50_ms": ms(p50.group(1)) if p50 else float("nan"),
        "p99_ms": ms(p99.group(1)) if p99 else float("nan"),
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--duration", type=int, default=5, help="seconds per cell")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--workers", default="1", help="uvicorn worker counts, e.g. 1,2")
    ap.add_argument(
        "--rounds", type=int, default=2, help="runs per cell, interleaved; the best is kept"
    )
    ap.add_argument(
        "--tipg",
        type=Path,
        default=Path("/tmp/tipg-venv"),
        help="virtualenv with tipg and uvicorn (skipped when absent)",
    )
    ap.add_argument(
        "--results", type=Path, default=None, help="append the Markdown table to this file"
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    conc = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    rng = np.random.default_rng(7)
    procs: list[subprocess.Popen] = []
    with TempPostgres(settings={"max_connections": "300"}) as pg:
        t0 = time.perf_counter()
        layers = demo_layers(households=args.households)
        gpkg = work / "demo.gpkg"
        fill_demo(open_store(gpkg), layers)
        db_url = f"{pg.url}?schema=gridgis"
        store = open_store(db_url)
        fill_demo(store, layers)
        store.close()
        grids = layers["grids"]
        print(
            f"demo city {args.households:,} households: {len(grids)} grids, "
            f"{len(layers['buildings']):,} buildings ({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
        )
        # 500 points: 80% inside grids (random buildings' and grids' inner points), 20%
        # anywhere in the city's bounds; 500 boxes of about 300 m around random points
        minx, miny, maxx, maxy = grids.total_bounds
        inner = np.array([(p.x, p.y) for p in layers["buildings"].geometry.representative_point()])
        pick = inner[rng.integers(0, len(inner), 400)]
        anywhere = np.column_stack([rng.uniform(minx, maxx, 100), rng.uniform(miny, maxy, 100)])
        pts = np.vstack([pick, anywhere])
        rng.shuffle(pts)
        half = 0.0015  # degrees, ~150 m
        centres = np.column_stack([rng.uniform(minx, maxx, 500), rng.uniform(miny, maxy, 500)])
        boxes = [f"{x - half:.6f},{y - half:.6f},{x + half:.6f},{y + half:.6f}" for x, y in centres]
        scripts = {
            "point": [f'"/lookup/point?lon={x:.6f}&lat={y:.6f}"' for x, y in pts],
            "items": [f'"/collections/grids/items?bbox={b}&limit=10"' for b in boxes],
            "tipg_items": [f'"/collections/gridgis.grids/items?bbox={b}&limit=10"' for b in boxes],
        }
        lua = {}
        for name, paths in scripts.items():
            lua[name] = work / f"{name}.lua"
            lua[name].write_text(LUA % ",".join(paths))

        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDGIS_")}
        env["PYTHONPATH"] = str(ROOT)  # this tree's code, whichever venv runs it
        gridgis = [sys.executable, "-c", "from gridgis.cli import main; main()"]
        servers: dict[str, int] = {}
        for w in [int(x) for x in args.workers.split(",")]:
            for name, target in (
                ("gridgis GeoPackage", ["--workspace", str(gpkg)]),
                ("gridgis PostGIS", ["--database", db_url]),
            ):
                port = free_port()
                cmd = [*gridgis, "serve", *target, "--port", str(port), "--workers", str(w)]
                procs.append(start([*cmd, "--no-access-log"], env, port, "/health"))
                servers[f"{name} ×{w}"] = port
        tipg_bin = args.tipg / "bin" / "uvicorn"
        if tipg_bin.exists():
            port = free_port()
            tenv = dict(
                env,
                DATABASE_URL=pg.url,
                TIPG_DB_SCHEMAS='["gridgis"]',
                TIPG_MAX_FEATURES_PER_QUERY="10000",
            )
            procs.append(
                start(
                    [
                        str(tipg_bin),
                        "tipg.main:app",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                        "--no-access-log",
                    ],
                    tenv,
                    port,
                    "/collections",
                )
            )
            servers["tipg"] = port
        else:
            print(f"tipg not found in {args.tipg}: skipped", file=sys.stderr)
        try:
            # the same query answers the same on every server
            for b in boxes[:20]:
                counts = []
                for name, port in servers.items():
                    coll = "gridgis.grids" if name == "tipg" else "grids"
                    r = httpx.get(
                        f"http://127.0.0.1:{port}/collections/{coll}/items",
                        params={"bbox": b, "limit": 10},
                        timeout=30,
                    ).json()
                    counts.append((r["numberMatched"], sorted(f["id"] for f in r["features"])))
                if any(c != counts[0] for c in counts):
                    raise SystemExit(f"servers disagree on bbox {b}: {counts}")
            for port in servers.values():  # warm up (lookup index is built on first use)
                httpx.get(
                    f"http://127.0.0.1:{port}/lookup/point?lon={pts[0][0]}&lat={pts[0][1]}",
                    timeout=60,
                )
            plan = [(n, "point") for n in servers if n != "tipg"] + [
                (n, "tipg_items" if n == "tipg" else "items") for n in servers
            ]
            best: dict[tuple[str, str, int], dict[str, float]] = {}
            # interleaved (every server at one concurrency, then the next) and repeated:
            # the machine is shared, so each cell keeps its best round
            for c in conc:
                for _ in range(args.rounds):
                    for name, kind in plan:
                        res = run_wrk(servers[name], lua[kind], c, args.duration)
                        endpoint = (
                            "/lookup/point"
                            if kind == "point"
                            else "/collections/grids/items?bbox&limit=10"
                        )
                        print(
                            f"{name:20s} {endpoint:42s} c={c:3d}  p50 "
                            f"{res['p50_ms']:7.2f} ms  p99 {res['p99_ms']:7.2f} ms  "
                            f"{res['rps']:8.0f} req/s  non-2xx {res['non_2xx']}",
                            file=sys.stderr,
                        )
                        cell = (name, endpoint, c)
                        if cell not in best or res["rps"] > best[cell]["rps"]:
                            best[cell] = res
            rows = [
                (n, e, c, r)
                for (n, e, c), r in sorted(
                    best.items(),
                    key=lambda kv: (
                        list(servers).index(kv[0][0]) + (0 if "point" in kv[0][1] else 10),
                        kv[0][2],
                    ),
                )
            ]
        finally:
            for p in procs:
                stop(p)
    shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    lines = [
        "",
        f"### bench_api ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Command: `{' '.join(['.venv/bin/python', 'benchmarks/bench_api.py'] + sys.argv[1:])}`",
        "",
        f"Demo city {args.households:,} households ({len(grids)} grids, "
        f"{len(layers['buildings']):,} buildings); ×N: uvicorn worker processes; wrk "
        f"{args.duration:g} s per cell on loopback, best of {args.rounds} interleaved "
        f"rounds; {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), load average at the end "
        f"{load[0]:.1f} (shared machine).",
        "",
        "| server | endpoint | clients | p50 ms | p99 ms | req/s | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, endpoint, c, r in rows:
        lines.append(
            f"| {name} | `{endpoint}` | {c} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['rps']:.0f} | {r['non_2xx']} |"
        )
    items = {(n, c): r["rps"] for n, e, c, r in rows if "items" in e}
    if any(n == "tipg" for n, _ in items):
        lines += ["", "Items throughput, gridgis / tipg (same PostGIS table, same query):", ""]
        for c in conc:
            t = items.get(("tipg", c))
            if not t:
                continue
            parts = [
                f"{n} {items[(n, c)] / t:.2f}×" for n in servers if n != "tipg" and (n, c) in items
            ]
            lines.append(f"- {c} clients: " + ", ".join(parts))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
