"""The demo: make the synthetic city, then run the workflows on it in an explicit order.

The order is the list :data:`DEMO_STEPS` (delineation writes the grids and the buildings'
``grid_code`` that coverage and the maps read), never an import side effect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gridgis.standards import Settings
from gridgis.store import Store
from gridgis.workflows.analyses import coverage, site
from gridgis.workflows.base import JobResult
from gridgis.workflows.grids import delineate
from gridgis.workflows.outputs import lookup_sample, make_map

DEMO_GRID_STAFF_SEED = 7
"""Seed of the grid heads and workers the demo puts on its grids."""

DEMO_SITE = ("kindergarten", 3)
"""Category and number of sites the demo proposes."""


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo: a name (used to select steps), a title for people, and the
    function run on (workspace, settings, output folder)."""

    name: str
    title: str
    run: Callable[[Store, Settings, Path], JobResult]


def _delineate(store: Store, settings: Settings, out: Path) -> JobResult:
    return delineate(store, settings, grid_staff_seed=DEMO_GRID_STAFF_SEED)


def _coverage(store: Store, settings: Settings, out: Path) -> JobResult:
    return coverage(store, settings)


def _site(store: Store, settings: Settings, out: Path) -> JobResult:
    return site(store, settings, *DEMO_SITE)


def _import(store: Store, settings: Settings, out: Path) -> JobResult:
    try:  # the import workflows (helper-owned module); the CLI's copy until it lands
        from gridgis.workflows.imports import demo_import
    except ImportError:
        from gridgis.cli.imports import demo_import
    result = demo_import(store, settings, out)
    return result if isinstance(result, JobResult) else JobResult("import", summary=str(result))


def _maps(store: Store, settings: Settings, out: Path) -> JobResult:
    return make_map(store, settings, out / "maps")


DEMO_STEPS: tuple[DemoStep, ...] = (
    DemoStep(
        "delineate", "Delineating grids (250–500 households), grid staff, assignment", _delineate
    ),
    DemoStep("coverage", "Coverage: walking distances, life circle, parks, gaps, norms", _coverage),
    DemoStep("site", "Proposed sites: 3 kindergartens", _site),
    DemoStep(
        "import",
        "Import: the demo's buildings as a GBK shapefile, its facilities as an Amap CSV",
        _import,
    ),
    DemoStep("lookup", "Address lookup", lookup_sample),
    DemoStep("maps", "Maps (index, streets, communities, coverage, lookup, boards)", _maps),
)
"""Every step of ``gridgis demo``, in the order they run."""


def make_demo_city(store: Store, settings: Settings, households: int = 30_000, seed: int = 7):
    """Write the synthetic city (:func:`gridgis.synth.make_city`) into *store* in one
    write, with its metadata; returns the city."""
    from gridgis.synth import make_city

    city = make_city(households=households, seed=seed, settings=settings)
    store.write_many(city.layers, params=city.params)
    store.set_meta(**city.meta)
    return city


def run_demo(
    store: Store,
    settings: Settings,
    out: Path,
    steps: Iterable[str] | None = None,
    on_step: Callable[[DemoStep], Callable[[JobResult], None] | None] | None = None,
) -> list[JobResult]:
    """Run the demo's steps on a workspace that holds the demo city.

    Parameters
    ----------
    steps
        Names of the steps to run (default all of :data:`DEMO_STEPS`); they always run in
        the order of :data:`DEMO_STEPS`.
    on_step
        Called with each step before it runs; may return a function called with its
        result (how the CLI prints a title, then the step's line).

    Returns
    -------
    list of JobResult
        One per step run, in order.
    """
    wanted = None if steps is None else set(steps)
    unknown = (wanted or set()) - {s.name for s in DEMO_STEPS}
    if unknown:
        from gridgis.errors import InputError

        raise InputError(f"unknown demo steps: {', '.join(sorted(unknown))}")
    results = []
    for step in DEMO_STEPS:
        if wanted is not None and step.name not in wanted:
            continue
        done = on_step(step) if on_step else None
        result = step.run(store, settings, out)
        results.append(result)
        if done:
            done(result)
    return results
