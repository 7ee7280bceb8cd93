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
from gridgis.cli.i18n import t
from gridgis.cli.info import print_summary
from gridgis.store import GeoPackageStore


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
        console.print(f"Making the demo city: {households:,} households, seed {seed} …")
        store = GeoPackageStore(path)
        workflows.make_demo_city(store, settings, households=households, seed=seed)
        console.print(f"  wrote {path} ({time.perf_counter() - t0:.1f} s)")

        def on_step(step: workflows.DemoStep):
            t1 = time.perf_counter()
            console.print(f"{step.title} …")
            return lambda job: console.print(f"  {job.summary} ({time.perf_counter() - t1:.1f} s)")

        workflows.run_demo(store, settings, out, on_step=on_step)
        print_summary(store)
        console.print(t("done", s=time.perf_counter() - t0, where=path))
