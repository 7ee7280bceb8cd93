"""``gridgis demo``: make the synthetic demo city and run every capability on it (the
steps are :data:`gridgis.workflows.DEMO_STEPS`, in that order)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from gridgis import workflows
from gridgis.cli.app import app
from gridgis.cli.common import RulesOpt, SetOpt, console, errors_to_stderr, load_settings
from gridgis.cli.i18n import CATALOGUE, category_name, t
from gridgis.cli.info import print_summary
from gridgis.store import GeoPackageStore


def job_line(job: workflows.JobResult) -> str:
    """A workflow's one-line summary; delineation's in the CLI's language."""
    s = job.stats
    if job.operation == "site" and "category" in s:
        cat = category_name(s["category"])
        return t("site line", n=s["sites"], cat=cat, hh=f"{s['households_new']:,}")
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
            max=2_000_000,
            help="Households in the demo city (10,000–1,000,000).",
        ),
    ] = 30_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same city.")] = 7,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Make a realistic synthetic Chinese city and run every analysis on it.

    Example: [bold]gridgis demo --out out/ --households 30000 --seed 7[/]
    """
    settings = load_settings(rules, set_)
    with errors_to_stderr():
        t0 = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        path = out / "demo.gpkg"
        if path.exists():
            path.unlink()
        console.print(t("making city", n=f"{households:,}", seed=seed))
        store = GeoPackageStore(path)
        workflows.make_demo_city(store, settings, households=households, seed=seed)
        console.print(t("wrote file", path=path, s=time.perf_counter() - t0))

        def on_step(step: workflows.DemoStep):
            t1 = time.perf_counter()
            key = f"demo.{step.name}"
            console.print(f"{t(key) if key in CATALOGUE else step.title} …")
            return lambda job: console.print(
                t("step done", line=job_line(job), s=time.perf_counter() - t1)
            )

        workflows.run_demo(store, settings, out, on_step=on_step)
        print_summary(store)
        console.print(t("done", s=time.perf_counter() - t0, where=path))
