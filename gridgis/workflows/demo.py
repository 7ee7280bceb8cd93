"""The demo: make the synthetic city, then run the workflows on it in an explicit order.

The order is the list :data:`DEMO_STEPS` (delineation writes the grids and the buildings'
``grid_code`` that coverage and the maps read), never an import side effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridgis.errors import GridgisError
from gridgis.standards import Settings
from gridgis.store import Store
from gridgis.workflows.analyses import coverage, site
from gridgis.workflows.base import JobResult
from gridgis.workflows.grids import delineate
from gridgis.workflows.outputs import lookup_sample, make_map

log = logging.getLogger(__name__)

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


def demo_import(store: Store, settings: Settings, out: Path) -> JobResult:
    """Write the demo city's buildings as a district survey would arrive (Chinese field
    names, GBK, no .cpg) and its facilities as an Amap export (GCJ-02, 经度/纬度, Chinese
    categories), import both into ``out/import_demo/imported.gpkg`` and check them."""
    import numpy as np
    import pandas as pd
    import pyogrio
    import pyproj
    import shapely

    from gridgis.crs import wgs84_to_gcj02
    from gridgis.io import Source, import_into
    from gridgis.layers import BUILDING_USES, FACILITY_CATEGORIES
    from gridgis.store import open_store

    folder = out / "import_demo"
    folder.mkdir(parents=True, exist_ok=True)
    b = store.read("buildings")
    survey = b[["building_id", "name", "households", "floors", "use", "geometry"]].rename(
        columns={
            "building_id": "楼栋编号",
            "name": "名称",
            "households": "户数",
            "floors": "层数",
            "use": "用途",
        }
    )
    survey["用途"] = survey["用途"].map(BUILDING_USES)
    shp = folder / "楼栋.shp"
    pyogrio.write_dataframe(survey, shp, encoding="gbk")
    (folder / "楼栋.cpg").unlink(missing_ok=True)
    fac = store.read("facilities")
    pts = shapely.get_coordinates(shapely.point_on_surface(fac.geometry.values))
    lon, lat = wgs84_to_gcj02(pts[:, 0], pts[:, 1])
    csv = folder / "amap_pois.csv"
    pd.DataFrame(
        {
            "名称": fac["name"],
            "类别": fac["category"].map(FACILITY_CATEGORIES),
            "经度": lon,
            "纬度": lat,
        }
    ).to_csv(csv, index=False)
    target = folder / "imported.gpkg"
    target.unlink(missing_ok=True)
    ws = open_store(target)
    report = import_into(
        ws,
        [
            Source(shp, field_map={"building_id": "楼栋编号"}),
            Source(csv, layer="facilities", crs="gcj02"),
        ],
        settings=settings,
    )
    got_b, got_f = ws.read("buildings"), ws.read("facilities")
    if len(got_b) != len(b) or int(got_b["households"].sum()) != int(b["households"].sum()):
        raise GridgisError(
            f"import demo: buildings or households differ ({len(got_b)} vs {len(b)})"
        )
    names = got_b.set_index("building_id")["name"].reindex(b["building_id"])
    if not (names.fillna("") == b["name"].fillna("").to_numpy()).all():
        raise GridgisError("import demo: building names garbled (encoding)")
    detected = next(
        (
            n.split("decoded as ")[1].split(" ")[0]
            for n in report.notes
            if "(detected)" in n and "decoded as" in n
        ),
        "UTF-8/ASCII",
    )
    back = shapely.get_coordinates(got_f.geometry.values)
    _, _, dist = pyproj.Geod(ellps="WGS84").inv(back[:, 0], back[:, 1], pts[:, 0], pts[:, 1])
    counts = report.counts()
    return JobResult(
        "import",
        summary=f"{counts['buildings'][0]:,} buildings (Chinese fields, {detected} detected) and "
        f"{counts['facilities'][0]:,} facilities (GCJ-02 → WGS84, max error "
        f"{np.max(dist):.3f} m) re-imported into {target}",
    )


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
        demo_import,
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


def demo_districts(households: int, settings: Settings) -> int:
    """Districts of a demo of ``households``: 1 (one demo city) up to
    ``demo.district_households``, else enough districts of at most that many.

    Raises
    ------
    LimitError
        Above ``demo.max_households``, or more districts than a province holds.
    InputError
        Below 1,000 households (the demo city's minimum).
    """
    from gridgis.errors import InputError, LimitError
    from gridgis.province import MAX_DISTRICTS

    rules = settings.demo
    if households < 1_000:
        raise InputError(f"households={households:,}: the demo needs at least 1,000")
    if households > rules.max_households:
        raise LimitError(
            f"households={households:,}: the demo holds at most {rules.max_households:,} "
            "(demo.max_households)"
        )
    districts = -(-households // rules.district_households)
    if districts > MAX_DISTRICTS:
        raise LimitError(
            f"households={households:,} needs {districts} districts of at most "
            f"{rules.district_households:,} (demo.district_households); a province holds "
            f"at most {MAX_DISTRICTS}"
        )
    return districts


def make_demo(
    store: Store,
    settings: Settings,
    households: int = 30_000,
    seed: int = 7,
    cluster: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the demo's data into *store*: one demo city up to
    ``demo.district_households`` households (:func:`make_demo_city`), above it a province
    of several demo cities written district by district
    (:func:`gridgis.province.write_province`, each district a task on ``cluster`` when
    given: ``local[:N]``, ``tcp://host:port`` or a Client).

    Parameters
    ----------
    progress
        ``callback(households_done, households_total)`` as districts are written.

    Returns
    -------
    dict
        The workspace metadata written, with ``districts`` (1 for a city).
    """
    districts = demo_districts(households, settings)
    if districts == 1:
        city = make_demo_city(store, settings, households=households, seed=seed)
        if progress is not None:
            progress(households, households)
        return dict(city.meta) | {"districts": 1}
    from gridgis.partitioned import cluster_client
    from gridgis.province import write_province

    with cluster_client(cluster) as client:
        meta = write_province(store, households, districts, seed, client, settings, progress)
    return meta | {"districts": districts}


def skipped_steps(households: int, settings: Settings) -> tuple[str, ...]:
    """Demo steps too heavy for a demo of ``households`` (``demo.large_skip_steps`` above
    ``demo.full_steps_max_households``), skipped by :func:`run_demo`."""
    if households > settings.demo.full_steps_max_households:
        return tuple(settings.demo.large_skip_steps)
    return ()


def skip_message(step: str, households: int, settings: Settings) -> str:
    """Why a demo step was skipped, in Chinese (the step can be run on its own on the
    workspace)."""
    return (
        f"已跳过: {households:,} 户超过演示完整运行的上限 "
        f"{settings.demo.full_steps_max_households:,} 户 (demo.full_steps_max_households), "
        "此步骤的耗时和内存随户数线性增长; 可对工作空间单独运行此步骤"
    )


def run_demo(
    store: Store,
    settings: Settings,
    out: Path,
    steps: Iterable[str] | None = None,
    on_step: Callable[[DemoStep], Callable[[JobResult], None] | None] | None = None,
    cluster: Any = None,
    households: int | None = None,
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
    cluster
        ``local[:N]``, ``tcp://host:port`` or a Client: delineation (with assignment) and
        coverage run partitioned on it.
    households
        Households of the demo (default: the workspace's ``demo_households``): above
        ``demo.full_steps_max_households`` the steps of ``demo.large_skip_steps`` are
        skipped, their result saying why and how to run them (``stats["skipped"]``).

    Returns
    -------
    list of JobResult
        One per step run (or skipped), in order.
    """
    wanted = None if steps is None else set(steps)
    unknown = (wanted or set()) - {s.name for s in DEMO_STEPS}
    if unknown:
        from gridgis.errors import InputError

        raise InputError(f"unknown demo steps: {', '.join(sorted(unknown))}")
    if households is None and store is not None:
        households = int(store.meta().get("demo_households") or 0)
    skip = skipped_steps(households or 0, settings)
    results = []
    from gridgis.partitioned import cluster_client

    with cluster_client(cluster) as client:
        for step in DEMO_STEPS:
            if wanted is not None and step.name not in wanted:
                continue
            done = on_step(step) if on_step else None
            if step.name in skip:
                msg = skip_message(step.name, households or 0, settings)
                log.info("demo: %s skipped: %s", step.name, msg)
                result = JobResult(step.name, summary=msg, stats={"skipped": True})
            elif step.name in _ON_CLUSTER and client is not None:
                result = _ON_CLUSTER[step.name](store, settings, out, client)
            else:
                result = step.run(store, settings, out)
            results.append(result)
            if done:
                done(result)
    return results


_ON_CLUSTER: dict[str, Callable[[Store, Settings, Path, Any], JobResult]] = {
    "delineate": lambda store, settings, out, client: delineate(
        store, settings, grid_staff_seed=DEMO_GRID_STAFF_SEED, cluster=client
    ),
    "coverage": lambda store, settings, out, client: coverage(store, settings, cluster=client),
}
"""Demo steps that run partitioned when the demo is given a cluster."""
