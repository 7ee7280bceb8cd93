"""``gridgis demo``: make the synthetic demo city and run every capability on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from gridgis.cli.app import app
from gridgis.cli.common import RulesOpt, SetOpt, console, errors_to_stderr, load_settings
from gridgis.cli.info import print_summary
from gridgis.standards import Settings
from gridgis.store import GeoPackageStore, Store

DemoStep = Callable[[Store, Settings, Path], str]
"""A step of the demo: (workspace, settings, output folder) -> one line for the summary."""

DEMO_STEPS: list[tuple[str, DemoStep]] = []
"""Capabilities add their step here, in the order they run (delineate, coverage, maps…)."""


def demo_step(title: str) -> Callable[[DemoStep], DemoStep]:
    """Register a function as a step of ``gridgis demo``."""

    def register(func: DemoStep) -> DemoStep:
        DEMO_STEPS.append((title, func))
        return func

    return register


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
    from gridgis.synth import make_city

    settings = load_settings(rules, set_)
    with errors_to_stderr():
        t0 = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        path = out / "demo.gpkg"
        if path.exists():
            path.unlink()
        console.print(f"Making the demo city: {households:,} households, seed {seed} …")
        city = make_city(households=households, seed=seed, settings=settings)
        store = GeoPackageStore(path)
        store.write_many(city.layers, params=city.params)
        store.set_meta(**city.meta)
        console.print(f"  wrote {path} ({time.perf_counter() - t0:.1f} s)")
        for title, step in DEMO_STEPS:
            t1 = time.perf_counter()
            console.print(f"{title} …")
            line = step(store, settings, out)
            console.print(f"  {line} ({time.perf_counter() - t1:.1f} s)")
        print_summary(store)
        console.print(f"Done in {time.perf_counter() - t0:.1f} s. Workspace: {path}")
