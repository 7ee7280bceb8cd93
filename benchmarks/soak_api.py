"""Soak test of the HTTP API on loopback, bounded in time, on both stores.

For each store (a GeoPackage file, then a throwaway PostGIS from
``gridgis.store.pgtemp``) holding the demo city (``--households``):

1. ``gridgis serve`` (one worker, writes enabled) is started;
2. ``wrk`` drives it with ``--clients`` connections for ``--duration`` seconds, in
   slices of ``--slice`` seconds, cycling through a mix of reads (point lookups, bbox
   and attribute-filtered items, grid pages, coverage, collections, health);
3. meanwhile a writer re-runs ``POST /jobs/assign`` (a full rewrite of the assigned
   layers) every ``--write-every`` seconds, and hostile requests arrive: an
   unauthenticated 60 MB body, a 70 MB chunked upload, and a zip bomb (2 GiB of zeros in
   about 2 MB) with the token;
4. the server's resident memory (``/proc/<pid>/status`` VmRSS) is sampled every 0.2 s.

Per slice it reports requests, errors (non-2xx and socket errors), p50/p99 latency and
RSS (at the end of the slice and the peak), plus what the writer and the hostile
requests got. ``--results FILE`` appends the Markdown table with the command line.

Example::

    .venv/bin/python benchmarks/soak_api.py --duration 60 --results benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_api import LUA, run_wrk, start, stop  # noqa: E402

from api.demo import demo_layers, fill_demo  # noqa: E402
from gridgis.store import open_store  # noqa: E402
from gridgis.store.pgtemp import TempPostgres, free_port  # noqa: E402

TOKEN = "soak-token"


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), MB."""
    total = 0
    pids = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Sampler(threading.Thread):
    """Samples the server's RSS every 0.2 s; ``peak()`` since the last ``reset()``."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.max = 0.0
        self.overall = 0.0

    def run(self) -> None:
        while not self.stop_flag.is_set():
            v = rss_mb(self.pid)
            with self.lock:
                self.max = max(self.max, v)
                self.overall = max(self.overall, v)
            time.sleep(0.2)

    def reset(self) -> float:
        with self.lock:
            peak, self.max = self.max, 0.0
        return peak


def paths(layers: dict, rng: np.random.Generator) -> list[str]:
    """The read mix: 40 % point lookups, 20 % bbox items, 10 % filtered items, 10 %
    grid pages, 10 % coverage, 5 % collections, 5 % health."""
    grids = layers["grids"]
    minx, miny, maxx, maxy = grids.total_bounds
    inner = np.array([(p.x, p.y) for p in layers["buildings"].geometry.representative_point()])
    out: list[str] = []
    for x, y in inner[rng.integers(0, len(inner), 400)]:
        out.append(f"/lookup/point?lon={x:.6f}&lat={y:.6f}")
    for x, y in zip(rng.uniform(minx, maxx, 200), rng.uniform(miny, maxy, 200), strict=True):
        out.append(f"/collections/grids/items?bbox={x:.5f},{y:.5f},{x + 0.003:.5f},{y + 0.003:.5f}")
    cats = sorted(set(layers["access"]["category"]))
    for i in range(100):
        out.append(
            f"/collections/access/items?category={cats[i % len(cats)]}&covered="
            f"{'true' if i % 2 else 'false'}&limit=20"
        )
    for code in grids["grid_code"].sample(100, replace=True, random_state=7):
        out.append(f"/grids/{code}")
    for i in range(100):
        out.append(f"/coverage?level=community&category={cats[i % len(cats)]}")
    out += ["/collections"] * 50 + ["/health"] * 50
    rng.shuffle(out)
    return out


def bomb() -> bytes:
    """A zip of one entry: 2 GiB of zeros (about 2 MB compressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("楼栋.csv", "w", force_zip64=True) as fh:
            block = b"0" * (1 << 20)
            for _ in range(2048):
                fh.write(block)
    return buf.getvalue()


def side_traffic(
    base: str, stop_flag: threading.Event, every: float, log: dict, zipped: bytes
) -> None:
    """The writer and the hostile requests, in turn, until ``stop_flag``."""
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def chunked(n_mb: int, head: bytes = b""):
        yield head
        for _ in range(n_mb):
            yield b"x" * (1 << 20)

    part = (
        b'--zz\r\nContent-Disposition: form-data; name="files"; filename="a.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n"
    )
    hostile = [
        ("unauthenticated 60 MB body", lambda c: c.post("/upload", content=b"x" * (60 << 20))),
        (
            "70 MB chunked upload",
            lambda c: c.post(
                "/upload",
                headers={**auth, "content-type": "multipart/form-data; boundary=zz"},
                content=chunked(70, part),
            ),
        ),
        (
            "zip bomb (2 GiB of zeros)",
            lambda c: c.post("/upload", headers=auth, files={"files": ("b.zip", zipped)}),
        ),
    ]
    i = 0
    with httpx.Client(base_url=base, timeout=300) as c:
        while not stop_flag.wait(every / 2):
            try:
                r = c.post("/jobs/assign", headers=auth)
                log.setdefault("POST /jobs/assign", []).append(r.status_code)
            except httpx.HTTPError as exc:
                log.setdefault("POST /jobs/assign", []).append(type(exc).__name__)
            if stop_flag.wait(every / 2):
                break
            name, call = hostile[i % len(hostile)]
            i += 1
            try:
                log.setdefault(name, []).append(call(c).status_code)
            except httpx.HTTPError as exc:
                log.setdefault(name, []).append(type(exc).__name__)


def soak(
    name: str, target: list[str], env: dict, lua: Path, args, zipped: bytes
) -> tuple[list, dict]:
    port = free_port()
    cmd = [sys.executable, "-c", "from gridgis.cli import main; main()", "serve", *target]
    proc = start([*cmd, "--port", str(port), "--no-access-log"], env, port, "/health")
    base = f"http://127.0.0.1:{port}"
    sampler = Sampler(proc.pid)
    sampler.start()
    rows = []
    log: dict[str, list] = {}
    stop_flag = threading.Event()
    side = threading.Thread(
        target=side_traffic, args=(base, stop_flag, args.write_every, log, zipped)
    )
    try:
        httpx.get(f"{base}/lookup/point?lon=0&lat=0", timeout=120)
        start_rss = rss_mb(proc.pid)
        side.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.duration:
            sampler.reset()
            res = run_wrk(port, lua, args.clients, args.slice)
            rows.append(
                {
                    "t": round(time.monotonic() - t0),
                    **res,
                    "rss_mb": rss_mb(proc.pid),
                    "peak_mb": sampler.reset() or rss_mb(proc.pid),
                }
            )
            print(f"{name} {rows[-1]}", file=sys.stderr)
        stop_flag.set()
        side.join(timeout=600)
    finally:
        stop_flag.set()
        sampler.stop_flag.set()
        stop(proc)
    return rows, {"start_mb": start_rss, "peak_mb": sampler.overall, **log}


def table(name: str, rows: list, extra: dict) -> list[str]:
    out = [
        f"**{name}** — RSS at start {extra['start_mb']:.0f} MB, peak {extra['peak_mb']:.0f} MB",
        "",
        "| t s | requests | errors | p50 ms | p99 ms | req/s | RSS MB | peak MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        errors = r["non_2xx"] + r["socket_errors"]
        out.append(
            f"| {r['t']} | {r['requests']} | {errors} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['rps']:.0f} | {r['rss_mb']:.0f} | {r['peak_mb']:.0f} |"
        )
    total = sum(r["requests"] for r in rows)
    errs = sum(r["non_2xx"] + r["socket_errors"] for r in rows)
    out += ["", f"Reads: {total:,} requests, {errs} errors."]
    for k, v in extra.items():
        if k not in ("start_mb", "peak_mb"):
            counts = {s: v.count(s) for s in dict.fromkeys(v)}
            out.append(f"- {k}: " + ", ".join(f"{n} × {s}" for s, n in counts.items()))
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--households", type=int, default=10_000)
    ap.add_argument("--duration", type=int, default=60, help="seconds of load per store")
    ap.add_argument("--slice", type=int, default=10, help="seconds per reported slice")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--write-every", type=float, default=10.0, help="seconds between writes")
    ap.add_argument("--stores", default="gpkg,postgis")
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="soak-api-"))
    layers = demo_layers(households=args.households)
    lua = work / "mix.lua"
    lua.write_text(LUA % ",".join(f'"{p}"' for p in paths(layers, np.random.default_rng(7))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDGIS_")}
    env.update(PYTHONPATH=str(ROOT), GRIDGIS_API_TOKEN=TOKEN)
    stores = args.stores.split(",")
    zipped = bomb()
    lines = [
        "",
        f"### soak_api ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Command: `{' '.join(['.venv/bin/python', 'benchmarks/soak_api.py'] + sys.argv[1:])}`",
        "",
        f"Demo city {args.households:,} households; one uvicorn worker; wrk "
        f"{args.clients} connections on loopback in {args.slice} s slices; a full "
        f"`POST /jobs/assign` every {args.write_every:g} s and, in between, hostile "
        "requests in turn; RSS of the server process sampled every 0.2 s; "
        f"{os.cpu_count()} CPUs ({platform.machine()}), load average at the end "
        "{load} (shared machine).",
        "",
    ]
    with TempPostgres(settings={"max_connections": "300"}) as pg:
        for kind in stores:
            if kind == "gpkg":
                path = work / "soak.gpkg"
                fill_demo(open_store(path), layers)
                target, name = ["--workspace", str(path)], "GeoPackage"
            else:
                url = f"{pg.url}?schema=soak"
                s = open_store(url)
                fill_demo(s, layers)
                s.close()
                target, name = ["--database", url], "PostGIS"
            rows, extra = soak(name, target, env, lua, args, zipped)
            lines += table(name, rows, extra)
    shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(lines).replace("{load}", f"{os.getloadavg()[0]:.1f}") + "\n"
    print(text)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
