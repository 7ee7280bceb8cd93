"""``gridgis coverage`` and ``gridgis site``: who is left out, and where one more site helps."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.cells import cell_len
from rich.table import Table

from gridgis import workflows
from gridgis.cli.app import app
from gridgis.cli.common import (
    ClusterOpt,
    DatabaseOpt,
    RulesOpt,
    SetOpt,
    WorkspaceOpt,
    console,
    open_workspace,
    progress,
    progress_callback,
)
from gridgis.cli.i18n import category_name, t


def _rates_table(result) -> Table:
    cov = result.layers["coverage"]
    level = result.levels[0] if result.levels else None
    table = Table(title=t("rates_title"), title_justify="left")
    cols = ["households", "households_covered", "households_covered_straight"]
    cols += ["households_known"] if "households_known" in cov.columns else []
    c = cov[cov["level"] == level].groupby("category")[cols].sum() if level is not None else None
    if c is None:
        c = cov.iloc[0:0]
    elif "households_known" not in c.columns:  # a workspace from before households_known
        c["households_known"] = c["households"]
    names = {cat: category_name(cat) for cat in c.index}
    widest = max((cell_len(n) for n in names.values()), default=8)
    for col in ("category", "radius m", "walking", "straight line", "gap households"):
        if col == "category":  # never cut: the column is as wide as its longest name
            table.add_column(t(col), min_width=widest, overflow="fold")
        else:
            table.add_column(t(col), justify="right", overflow="fold")
    if level is None:
        return table
    radius = result.params["radius_m"]
    no_data = set(result.params.get("no_data_categories", []))
    for cat, row in c.iterrows():
        hh = row["households_known"]  # walks known: buildings beyond the roads left out
        r = radius.get(cat, result.params["life_circle_15min_m"])
        if cat in no_data:  # no facility in the workspace: unknown, not 0 %
            table.add_row(names[cat], f"{r:,.0f}", f"[yellow]{t('no data')}[/]", t("no data"), "—")
            continue
        if hh <= 0:  # no building reaches the road data
            table.add_row(names[cat], f"{r:,.0f}", f"[yellow]{t('no data')}[/]", "—", "—")
            continue
        table.add_row(
            names[cat],
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
    cluster: ClusterOpt = None,
) -> None:
    """Walking distance from every residential building to every facility category, coverage rates, gaps and community norms.

    Builds the walking network from the roads (all classes, noded at intersections; every connected piece with at least network.keep_piece_min_m of road kept, so each town of a county walks on its own roads), snaps buildings and facilities once (a building beyond coverage.max_snap_m of every road is 无数据, not uncovered), runs one multi-source search per category; parks and greens are reached at their boundary. Writes layers access, coverage (per street, community and grid, incl. the 15-minute life circle and the park service-radius rate against the 80% floor), coverage_gaps, norms and coverage_findings.

    Example: [bold]gridgis coverage --workspace out/demo.gpkg --set coverage.max_snap_m=150[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings), progress() as bar:
        job = workflows.coverage(
            store, settings, progress=lambda what: progress_callback(bar, what), cluster=cluster
        )
        result = job.detail
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
        console.print("  " + t("wrote_to", layers=", ".join(result.layers), where=store.location))


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
    cluster: ClusterOpt = None,
) -> None:
    """Propose new sites for a category that bring the most uncovered households within its walking radius (existing facilities kept; lazy greedy).

    Writes layer proposed_sites (rank, households_new per site, coverage after), replacing that category's earlier proposals.

    Example: [bold]gridgis site --workspace out/demo.gpkg --category kindergarten --count 3[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings):
        result = workflows.site(
            store,
            settings,
            category,
            count,
            candidates=candidates,
            candidate_id=candidate_id,
            cluster=cluster,
        ).detail
        s = result.sites
        cat = category_name(category)
        table = Table(
            title=t("sites_title", cat=cat, r=result.params["radius_m"]), title_justify="left"
        )
        for col in ("rank", "site", "near", "new hh", "after", "lon, lat"):
            table.add_column(t(col), justify="right", overflow="fold")
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
        if total:
            line = t("covered before", cat=cat, before=before, total=total, rate=before / total)
            console.print(f"  {line}")
        if len(s) < count:
            console.print(f"  [yellow]{t('only sites', n=len(s))}[/]")
        console.print("  " + t("wrote_to", layers="proposed_sites", where=store.location))
        if gates:
            _site_gates(store, settings, category, count)


def _site_gates(store, settings, category: str, count: int) -> None:
    """``site --gates``: the proposed gates beside the proposed sites."""
    result = workflows.site_gates(store, settings, category, count).detail
    s = result.sites
    table = Table(
        title=f"Proposed gates for {category_name(category)} "
        f"(radius {result.params['radius_m']:,.0f} m walking): open a wall instead of building",
        title_justify="left",
    )
    for col in ("rank", "gate", "new hh", "after", "lon, lat"):
        table.add_column(col, justify="right", overflow="fold")
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
    console.print("  " + t("wrote_to", layers="proposed_gates", where=store.location))
