"""``gridgis demo``: make the synthetic demo city (or, above ``demo.district_households``,
a province of several demo cities) and run every capability on it (the steps are
:data:`gridgis.workflows.DEMO_STEPS`, in that order)."""

from __future__ import annotations

import logging
import resource
import time
from pathlib import Path
from typing import Annotated

import typer

from gridgis import workflows
from gridgis.cli.app import app
from gridgis.cli.common import (
    ClusterOpt,
    RulesOpt,
    SetOpt,
    console,
    errors_to_stderr,
    load_settings,
    progress_of,
)
from gridgis.cli.i18n import CATALOGUE, category_name, t
from gridgis.cli.info import print_summary
from gridgis.store import GeoPackageStore
from gridgis.workflows.demo import demo_districts, make_demo, skipped_steps

SKIPPED_HOW = {
    "import": "gridgis demo --out demo_full/ --households 2000000 (导入演示在完整演示中运行)",
    "maps": "gridgis map --workspace {ws} --out maps/ (或 gridgis serve --workspace {ws}, "
    "按矢量瓦片浏览)",
    "lookup": "gridgis lookup --workspace {ws} 地址",
    "site": "gridgis site --workspace {ws} --category kindergarten --count 3",
    "coverage": "gridgis coverage --workspace {ws}",
    "delineate": "gridgis delineate --workspace {ws}",
}
"""The command that runs a demo step the demo skipped, on the demo's workspace."""

#: Peak RSS of the demo in one process per household, as measured on the demo province:
#: 2.56 GB at 5,000,000 households; at 50,000,000 the coverage step's 15.25 GB (the lookup
#: step matches a sample above demo.full_steps_max_households: before, its 1 M-address
#: index and every query made the peak, 9.83 GB at 20,000,000). benchmarks/RESULTS.md
#: "#19 demo province". Used by ``--plan`` and to warn before a demo the machine's memory
#: cannot hold.
_PEAK_BYTES_PER_HOUSEHOLD = 320


def _memory_gb() -> float:
    """Physical memory of this machine (GB)."""
    import os

    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e9


def job_line(job: workflows.JobResult) -> str:
    """A workflow's one-line summary; delineation's in the CLI's language."""
    s = job.stats
    if job.operation == "site" and "category" in s:
        cat = category_name(s["category"])
        return t("site line", n=s["sites"], cat=cat, hh=f"{s['households_new']:,}")
    if job.operation == "lookup" and "own_record" in s:
        total = s.get("addresses", s["queries"])
        return t(
            "lookup line",
            hit=f"{s['own_record']:,}",
            n=f"{s['queries']:,}",
            of=t("lookup of", total=f"{total:,}") if total != s["queries"] else "",
            grid=f"{s['with_grid']:,}",
        )
    if job.operation != "delineate" or "grids" not in s:
        return job.summary
    lo, hi = s["bounds"]
    return t(
        "delineation line",
        grids=f"{s['grids']:,}",
        residential=f"{s['residential']:,}",
        unit=f"{s['unit']:,}",
        share=s["in_range"] / s["residential"] if s["residential"] else 1.0,
        lo=lo,
        hi=hi,
        mean=s["mean_households"],
        flagged=f"{s['flagged']:,}",
        pp=s["mean_pp"],
        inside=f"{s['buildings_in_grid']:,}",
        buildings=f"{s['buildings']:,}",
    )


def _plan(households: int, settings, cluster: str | None) -> int:
    """Print what the demo will build (a city, or a province of N districts) and
    return the number of districts."""
    districts = demo_districts(households, settings)
    if districts == 1:
        return 1
    per = -(-households // districts)
    skipped = skipped_steps(households, settings)
    console.print(
        t(
            "province plan",
            n=f"{households:,}",
            d=districts,
            per=f"{per:,}",
            where=cluster or t("this process"),
            skipped=", ".join(skipped) or "-",
        )
    )
    return districts


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the workspace and maps.")] = Path(
        "out"
    ),
    households: Annotated[
        int,
        typer.Option(
            "--households",
            min=1_000,
            max=50_000_000,
            help="Households in the demo (1,000–50,000,000). Up to demo.district_households "
            "(2,000,000) one city; above, a province of several demo cities built district "
            "by district (on --cluster when given); above demo.full_steps_max_households "
            "the import and map steps are skipped (run them on their own).",
        ),
    ] = 30_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same city.")] = 7,
    cluster: ClusterOpt = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Only print what would be built (city or province, districts, steps "
            "skipped, rough peak memory) and exit.",
        ),
    ] = False,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Make a realistic synthetic Chinese city and run every analysis on it.

    Example: [bold]gridgis demo --out out/ --households 30000 --seed 7[/]

    A province: [bold]gridgis demo --out big/ --households 20000000 --cluster local:2[/]
    """
    settings = load_settings(rules, set_)
    with errors_to_stderr():
        districts = _plan(households, settings, cluster)
        if plan:
            if districts == 1:
                console.print(t("making city", n=f"{households:,}", seed=seed))
            console.print(t("plan memory", gb=max(_peak_gb(households), 0.1)))
            return
        _peak_gb(households)
        _run(out, households, seed, districts, cluster, settings)


def _peak_gb(households: int) -> float:
    """The demo's rough peak memory in this process (GB); warns (in the CLI's language)
    when it is above this machine's memory."""
    gb, have = households * _PEAK_BYTES_PER_HOUSEHOLD / 1e9, _memory_gb()
    if gb > 0.9 * have:
        console.print(t("plan memory high", gb=gb, have=have))
    return gb


def _run(out: Path, households: int, seed: int, districts: int, cluster, settings) -> None:
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "demo.gpkg"
    if path.exists():
        path.unlink()
    store = GeoPackageStore(path)
    if districts == 1:
        console.print(t("making city", n=f"{households:,}", seed=seed))
        make_demo(store, settings, households=households, seed=seed)
    else:
        logging.getLogger("gridgis.province").setLevel(logging.INFO)
        with progress_of(t("building districts")) as bar:
            make_demo(
                store, settings, households=households, seed=seed, cluster=cluster, progress=bar
            )
    console.print(t("wrote file", path=path, s=time.perf_counter() - t0))

    def on_step(step: workflows.DemoStep):
        t1 = time.perf_counter()
        key = f"demo.{step.name}"
        console.print(f"{t(key) if key in CATALOGUE else step.title} …")

        def done(job: workflows.JobResult) -> None:
            if job.stats.get("skipped"):
                how = SKIPPED_HOW.get(step.name, f"gridgis {step.name} --workspace {{ws}}")
                console.print(f"  {job.summary}: {how.format(ws=path)}")
                return
            console.print(t("step done", line=job_line(job), s=time.perf_counter() - t1))

        return done

    workflows.run_demo(store, settings, out, on_step=on_step, cluster=cluster)
    print_summary(store)
    if districts > 1:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        console.print(t("peak memory", gb=peak))
    console.print(t("done", s=time.perf_counter() - t0, where=path))
