"""Partitioned siting, audit, export and batch lookup beside the single-process reference.

Usage::

    gridgis demo --households 1000000 --out /tmp/part1m
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_cluster_more.py /tmp/part1m/demo.gpkg \\
        [--workers 2] [--append]

For each job — ``gridgis site`` (kindergarten, 5 sites), ``gridgis audit`` (every check),
``gridgis export`` (the xlsx ledger; the PDF atlas of one street: cover, index, street
and community maps, one board per grid) and ``gridgis lookup --batch`` (every standard
address of the workspace, with the 栋 written 幢) — the single-process run in this process,
then the partitioned run on a LocalCluster of ``--workers`` worker processes started for
it (as ``--cluster local:N`` does). Wall time, and CPU time of this process and every
process it started and reaped (workers, Chromium): ``getrusage`` of self and children,
so the cluster's start and stop are included in its CPU; the wall time of the run alone
(cluster already up) is given too. Every partitioned result is compared with the
single-process one: tables exactly (``check_exact=True``), the PDF page by page (text,
decoded drawing instructions and page box; the files' creation dates differ between any
two runs), the xlsx cell by cell.

The machine is shared (2 cores, several sessions at the time of the recorded run):
timings are one run each and noisy; the speed-up on 2 cores is bounded by 2.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from gridgis import partitioned as P
from gridgis.cluster import open_client
from gridgis.standards import DEFAULT


def _cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def measure(fn: Callable[[], object]) -> tuple[object, float, float]:
    """(result, wall s, CPU s of this process and its reaped children)."""
    c0, t0 = _cpu(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, _cpu() - c0


def same(got, ref) -> bool:
    pd.testing.assert_frame_equal(
        pd.DataFrame(got).reset_index(drop=True),
        pd.DataFrame(ref).reset_index(drop=True),
        check_exact=True,
    )
    return True


def pdf_content(path: Path) -> list[tuple]:
    from pypdf import PdfReader

    pages = PdfReader(str(path)).pages
    return [(p.extract_text(), p.get_contents().get_data(), tuple(p.mediabox)) for p in pages]


def xlsx_cells(path: Path) -> dict:
    from openpyxl import load_workbook

    wb = load_workbook(path)
    return {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in wb}


def jobs(layers: dict, out: Path, street: str) -> dict[str, tuple]:
    """name -> (single-process call, cluster call(client), equality check(a, b))."""
    from gridgis.audit import audit_grids
    from gridgis.export import export_workspace
    from gridgis.lookup import Lookup
    from gridgis.siting import site_from_layers

    names = ("addresses", "buildings", "grids", "communities", "streets", "staff")
    lk = {n: layers.get(n) for n in names}
    texts = [t.replace("栋", "幢") for t in layers["addresses"]["text"]]
    audit_in = {k: layers[k] for k in ("communities", "buildings", "roads")}
    pdf = dict(pdf="atlas", city="示范城", board_date="2026-01-02", code=street)

    def cmp_site(a, b):
        return same(a.sites, b.sites)

    def cmp_audit(a, b):
        return same(a.findings, b.findings) and same(a.grids, b.grids)

    def cmp_pdf(a, b):
        return a.pages == b.pages and pdf_content(a.files[0]) == pdf_content(b.files[0])

    def cmp_xlsx(a, b):
        return xlsx_cells(a.files[0]) == xlsx_cells(b.files[0])

    return {
        "site (kindergarten, 5 sites)": (
            lambda: site_from_layers(layers, "kindergarten", 5),
            lambda c: P.site_partitioned(c, layers, "kindergarten", 5),
            cmp_site,
        ),
        "audit (13 checks)": (
            lambda: audit_grids(layers["grids"], audit_in),
            lambda c: P.audit_partitioned(c, layers["grids"], audit_in),
            cmp_audit,
        ),
        f"export pdf atlas of street {street}": (
            lambda: export_workspace(layers, "pdf", out / "pdf-single", **pdf),
            lambda c: P.export_partitioned(c, layers, "pdf", out / "pdf-cluster", **pdf),
            cmp_pdf,
        ),
        "export xlsx ledger": (
            lambda: export_workspace(layers, "xlsx", out / "single.xlsx"),
            lambda c: P.export_partitioned(c, layers, "xlsx", out / "cluster.xlsx"),
            cmp_xlsx,
        ),
        f"lookup --batch ({len(texts):,} addresses)": (
            lambda: Lookup(**lk, settings=DEFAULT).addresses(texts),
            lambda c: P.lookup_addresses_partitioned(c, lk, texts),
            same,
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workspace")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", action="append", help="run only jobs starting with this")
    ap.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args()
    from gridgis.store import open_store

    with open_store(args.workspace) as store:
        layers = {n: store.read(n) for n in store.layers()}
    hh = int(layers["buildings"]["households"].sum())
    grids = layers["grids"]
    street = grids["grid_code"].astype(str).str[:9].value_counts().index[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-more-") as tmp:
        for name, (single, cluster, cmp) in jobs(layers, Path(tmp), street).items():
            if args.only and not any(name.startswith(o) for o in args.only):
                continue
            ref, w1, c1 = measure(single)
            run_wall = []

            def on_cluster(cluster=cluster, run_wall=run_wall):
                with open_client(f"local:{args.workers}") as client:
                    got, w, _ = measure(lambda: cluster(client))
                    run_wall.append(w)
                    return got

            got, w2, c2 = measure(on_cluster)
            ok = cmp(got, ref)
            rows.append((name, w1, c1, w2, run_wall[0], c2, ok))
            print(
                f"{name}: single {w1:.1f} s wall / {c1:.1f} s CPU; local:{args.workers} "
                f"{w2:.1f} s wall ({run_wall[0]:.1f} s run) / {c2:.1f} s CPU; equal {ok}",
                flush=True,
            )
    cmd = f"PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_cluster_more.py {args.workspace}"
    text = table(rows, hh, len(grids), args.workers, cmd)
    print(text)
    if args.append:
        with open(Path(__file__).with_name("RESULTS.md"), "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


def table(rows, hh: int, n_grids: int, workers: int, cmd: str) -> str:
    lines = [
        "## #19 partitioned siting/audit/export, session 4",
        "",
        f"`gridgis demo --households 1000000 --out /tmp/part1m` then `{cmd}` "
        f"({hh:,} households, {n_grids:,} grids; Python {platform.python_version()}, "
        f"{sys.platform}, 2 cores shared with other sessions; one run each). Wall and CPU "
        "seconds; CPU = this process and every process it started (workers, Chromium), "
        f"cluster start and stop included; 'run' = wall time with the cluster already up.",
        "",
        f"| job | single wall | single CPU | local:{workers} wall (run) | local:{workers} CPU "
        "| speed-up (wall) | equal |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, w1, c1, w2, wr, c2, ok in rows:
        lines.append(
            f"| {name} | {w1:.1f} | {c1:.1f} | {w2:.1f} ({wr:.1f}) | {c2:.1f} | "
            f"{w1 / w2:.2f} | {'yes' if ok else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
