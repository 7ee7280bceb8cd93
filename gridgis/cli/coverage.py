"""``gridgis coverage`` and ``gridgis site``: who is left out, and where one more site helps."""

from __future__ import annotations

from typing import Annotated, Any

import geopandas as gpd
import pandas as pd
import typer
from rich.table import Table

# delineation's demo step must run before coverage's (it writes grids and buildings'
# grid_code): importing it here registers it first, whatever the import order elsewhere
import gridgis.cli.delineate  # noqa: F401
from gridgis.cli.app import app
from gridgis.cli.common import (
    DatabaseOpt,
    RulesOpt,
    SetOpt,
    WorkspaceOpt,
    console,
    open_workspace,
    progress_of,
    read_present,
    require_layers,
)
from gridgis.cli.demo import demo_step
from gridgis.standards import Settings
from gridgis.store import Store

INPUT_LAYERS = (
    "buildings",
    "roads",
    "facilities",
    "green_spaces",
    "communities",
    "streets",
    "grids",
    "staff",
    "compounds",
    "gates",
)
"""Layers ``gridgis coverage`` reads when the workspace has them."""
OUTPUT_LAYERS = ("access", "coverage", "coverage_gaps", "norms", "coverage_findings")


def _read(store: Store, names: tuple[str, ...]) -> dict[str, Any]:
    present = require_layers(store, ("buildings", "roads"), " — coverage needs buildings and roads")
    return read_present(store, names, present)


def run_coverage_store(store: Store, settings: Settings, show_progress: bool = True):
    """Read the workspace, compute access, rates, gaps and norms, write them atomically.

    Returns the :class:`gridgis.coverage.CoverageResult`.
    """
    from gridgis.coverage import run_coverage

    layers = _read(store, INPUT_LAYERS)
    with progress_of("walking distances per category", show=show_progress) as callback:
        result = run_coverage(layers, settings, progress=callback)
    stale = [n for n in OUTPUT_LAYERS if n not in result.layers and store.has(n)]
    for name in stale:  # e.g. norms when the communities were removed
        store.delete(name)
    store.write_many(result.layers, params=result.params)
    return result


def run_site_store(
    store: Store,
    settings: Settings,
    category: str,
    count: int,
    candidates: str | None = None,
    candidate_id: str | None = None,
):
    """Propose sites for one category and write them into ``proposed_sites`` (rows of other
    categories are kept). Returns the :class:`gridgis.siting.Siting`."""
    from gridgis.siting import site_from_layers

    layers = _read(
        store, ("buildings", "roads", "facilities", "green_spaces", "compounds", "gates")
    )
    cand = None
    if candidates is not None:
        require_layers(store, [candidates], kind="candidates layer")
        cand = store.read(candidates)
        if not isinstance(cand, gpd.GeoDataFrame):
            raise ValueError(f"layer '{candidates}': has no geometry, cannot be sites")
    result = site_from_layers(layers, category, count, settings, cand, candidate_id)
    sites = result.sites
    if store.has("proposed_sites"):
        old = store.read("proposed_sites")
        old = old[old["category"].astype(str) != category]
        if len(old):
            sites = gpd.GeoDataFrame(
                pd.concat([old, sites], ignore_index=True), geometry="geometry", crs="EPSG:4326"
            )
    params = dict(result.params)
    params["coverage"] = settings.to_dict()["coverage"]
    store.write("proposed_sites", sites, params=params)
    return result


def _rates_table(result) -> Table:
    cov = result.layers["coverage"]
    level = result.levels[0] if result.levels else None
    table = Table(
        title="Households covered (walking network vs straight-line buffer)", title_justify="left"
    )
    for col in ("category", "radius m", "walking", "straight line", "gap households"):
        table.add_column(col, justify="left" if col == "category" else "right")
    if level is None:
        return table
    c = (
        cov[cov["level"] == level]
        .groupby("category")[["households", "households_covered", "households_covered_straight"]]
        .sum()
    )
    radius = result.params["radius_m"]
    no_data = set(result.params.get("no_data_categories", []))
    for cat, row in c.iterrows():
        hh = row["households"]
        r = radius.get(cat, result.params["life_circle_15min_m"])
        if cat in no_data:  # no facility in the workspace: unknown, not 0 %
            table.add_row(str(cat), f"{r:,.0f}", "[yellow]no data[/]", "no data", "—")
            continue
        table.add_row(
            str(cat),
            f"{r:,.0f}",
            f"{row['households_covered'] / hh:.1%}",
            f"{row['households_covered_straight'] / hh:.1%}",
            f"{hh - row['households_covered']:,}",
        )
    return table


@app.command()
def coverage(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Walking distance from every residential building to every facility category, coverage rates, gaps and community norms.

    Builds the walking network from the roads (all classes, noded at intersections, largest connected piece), snaps buildings and facilities once, runs one multi-source search per category; parks and greens are reached at their boundary. Writes layers access, coverage (per street, community and grid, incl. the 15-minute life circle and the park service-radius rate against the 80% floor), coverage_gaps, norms and coverage_findings.

    Example: [bold]gridgis coverage --workspace out/demo.gpkg --set coverage.max_snap_m=150[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings):
        result = run_coverage_store(store, settings)
        for text in result.params.get("warnings", []):
            console.print(f"[bold red]warning:[/] {text}")
        console.print(_rates_table(result))
        console.print(result.summary())
        park = result.layers["coverage"]
        park = park[(park["category"] == "park") & park["level"].isin(result.levels[-1:])]
        if len(park):
            console.print(
                f"  park service-radius rate > {settings.coverage.park_coverage_floor:.0%}"
                f" (households-based): {int(park['pass'].sum())}/{len(park)} "
                f"{result.levels[-1]} areas pass"
            )
        found = result.layers["coverage_findings"]
        if len(found):
            counts = found["kind"].value_counts()
            console.print(
                "  findings: "
                + ", ".join(f"{k} {v}" for k, v in counts.items())
                + " (layer coverage_findings)"
            )
        if not result.levels:
            console.print(
                "  [yellow]no communities[/]: rates, gaps and norms need them "
                "(gridgis delineate --communities makes them from an OSM import)"
            )
        elif "grid" not in result.levels:
            console.print(
                "  [yellow]no grids yet[/]: rates per street and community only "
                "(run gridgis delineate first for per-grid rates)"
            )
        console.print(f"  wrote {', '.join(result.layers)} to {store.location}")


@app.command()
def site(
    category: Annotated[
        str, typer.Option("--category", "-c", help="Facility category, e.g. kindergarten, park.")
    ],
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    count: Annotated[
        int, typer.Option("--count", "-k", min=1, help="Number of new sites to propose.")
    ] = 3,
    candidates: Annotated[
        str | None,
        typer.Option(
            "--candidates",
            help="Workspace layer of candidate parcels or points (default: the "
            "walking network's intersections and ends).",
        ),
    ] = None,
    candidate_id: Annotated[
        str | None,
        typer.Option("--candidate-id", help="Column naming the candidates (default: first *_id)."),
    ] = None,
    gates: Annotated[
        bool,
        typer.Option(
            "--gates",
            help="Also propose new gates in compound walls (layers compounds, gates) that "
            "bring the most households within the radius: open a gate, or build.",
        ),
    ] = False,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Propose new sites for a category that bring the most uncovered households within its walking radius (existing facilities kept; lazy greedy).

    Writes layer proposed_sites (rank, households_new per site, coverage after), replacing that category's earlier proposals.

    Example: [bold]gridgis site --workspace out/demo.gpkg --category kindergarten --count 3[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings):
        result = run_site_store(store, settings, category, count, candidates, candidate_id)
        s = result.sites
        table = Table(
            title=f"Proposed {category} sites (radius {result.params['radius_m']:,.0f} m walking)",
            title_justify="left",
        )
        for col in ("rank", "site", "near", "new hh", "after", "lon, lat"):
            table.add_column(col, justify="right")
        for r in s.itertuples():
            table.add_row(
                str(r.rank),
                str(r.candidate),
                str(r.at),
                f"{r.households_new:,}",
                f"{r.rate_after:.1%}",
                f"{r.geometry.x:.5f}, {r.geometry.y:.5f}",
            )
        console.print(table)
        before = result.params["households_covered_before"]
        total = result.households_total
        console.print(
            f"  {category}: {before:,}/{total:,} households covered before ({before / total:.1%})"
            if total
            else f"  {category}: no households"
        )
        if len(s) < count:
            console.print(f"  [yellow]only {len(s)} site(s) add coverage[/]")
        console.print(f"  wrote proposed_sites to {store.location}")
        if gates:
            _site_gates(store, settings, category, count)


def run_gates_store(store: Store, settings: Settings, category: str, count: int):
    """Propose gates for one category and write them into ``proposed_gates`` (rows of
    other categories are kept). Returns the :class:`gridgis.siting.Siting`."""
    from gridgis.siting import propose_gates

    layers = _read(
        store, ("buildings", "roads", "facilities", "green_spaces", "compounds", "gates")
    )
    result = propose_gates(layers, category, count, settings)
    sites = result.sites
    if store.has("proposed_gates"):
        old = store.read("proposed_gates")
        old = old[old["category"].astype(str) != category]
        if len(old):
            sites = gpd.GeoDataFrame(
                pd.concat([old, sites], ignore_index=True), geometry="geometry", crs="EPSG:4326"
            )
    store.write("proposed_gates", sites, params=dict(result.params))
    return result


def _site_gates(store: Store, settings: Settings, category: str, count: int) -> None:
    result = run_gates_store(store, settings, category, count)
    s = result.sites
    table = Table(
        title=f"Proposed gates for {category} (open a wall instead of building)",
        title_justify="left",
    )
    for col in ("rank", "gate", "new hh", "after", "lon, lat"):
        table.add_column(col, justify="right")
    for r in s.itertuples():
        table.add_row(
            str(r.rank),
            str(r.candidate),
            f"{r.households_new:,}",
            f"{r.rate_after:.1%}",
            f"{r.geometry.x:.5f}, {r.geometry.y:.5f}",
        )
    console.print(table)
    if len(s) < count:
        console.print(f"  [yellow]only {len(s)} gate(s) add coverage[/]")
    console.print(f"  wrote proposed_gates to {store.location}")


@demo_step("Coverage: walking distances, life circle, parks, gaps, norms, proposed sites")
def demo_coverage(store: Store, settings: Settings, out_dir) -> str:
    """Demo step: ``gridgis coverage`` then ``gridgis site`` for the kindergarten (3 sites)."""
    result = run_coverage_store(store, settings, show_progress=False)
    line = result.summary()
    if "grid" not in result.levels:
        line += " (no grids layer: per street and community only)"
    siting = run_site_store(store, settings, "kindergarten", 3)
    new = int(siting.sites["households_new"].sum())
    return f"{line}; 3 proposed kindergartens cover {new:,} more households"
