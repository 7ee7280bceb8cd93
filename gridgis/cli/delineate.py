"""``gridgis delineate``: divide communities into responsibility grids, then assign."""

from __future__ import annotations

from typing import Annotated

import typer
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
    fail,
    open_workspace,
    progress,
    progress_callback,
)
from gridgis.cli.i18n import t


@app.command()
def delineate(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    communities: Annotated[
        bool,
        typer.Option(
            "--communities",
            help="When the workspace has no communities (an OSM import), first "
            "divide each street — or the whole area — into communities of "
            "1,000–3,000 households (synthetic 12-digit codes).",
        ),
    ] = False,
    alignment: Annotated[
        list[str] | None,
        typer.Option(
            "--alignment",
            help="Layer whose boundaries grids should follow (residents' groups, "
            "police areas, school catchments…); repeatable.",
        ),
    ] = None,
    county: Annotated[
        str | None,
        typer.Option(
            "--county",
            help="6-digit code of the county/district (e.g. 110108 海淀区) for "
            "communities made by --communities when there are no streets; "
            "required then unless the workspace records its county_code.",
        ),
    ] = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
    cluster: ClusterOpt = None,
) -> None:
    """Divide communities into responsibility grids of 250–500 households and assign.

    Grids follow roads and avoid arterials and alignment boundaries, tile each community exactly, institutions meeting the unit-grid criteria become unit grids; out-of-range grids carry a flag naming the reason. Codes are numbered west to east, north to south and kept stable on re-runs (layer code_registry). Writes grids, buildings (grid_code), the assigned layers and delineation_findings in one atomic step.

    Example: [bold]gridgis delineate --workspace out/demo.gpkg --set grid.max_households=450[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings):
        if communities and store.has("communities") and store.info("communities").rows:
            console.print(
                f"[yellow]{t('note')}[/] {store.location} already has "
                f"{store.info('communities').rows:,} communities; using them"
            )
        with progress() as bar:
            try:
                job = workflows.delineate(
                    store,
                    settings,
                    make_communities=communities,
                    alignment=alignment,
                    county=county,
                    progress=lambda what: progress_callback(bar, what),
                    cluster=cluster,
                )
            except workflows.MissingLayerError as exc:
                if exc.layer != "communities":
                    raise
                fail(f"{exc}; use --communities to make them", exc.exit_code)
        s = job.stats
    table = Table(title=t("grids_in", where=store.location, crs=s["crs"]), title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    lo, hi = s["bounds"]
    for k, v in (
        (t("communities made"), s["communities_made"]),
        (t("grids"), s["grids"]),
        (t("residential"), s["residential"]),
        (t("unit"), s["unit"]),
        (t("residential within", lo=lo, hi=hi), s["in_range"]),
        (t("flagged"), s["flagged"]),
        (t("crossings"), s["crossings"]),
        (t("mean households"), f"{s['mean_households']:.0f}"),
        (t("mean pp"), f"{s['mean_pp']:.3f}"),
        (t("codes kept"), s["kept_codes"]),
        (t("codes retired"), s["retired_codes"]),
        (t("buildings in a grid"), f"{s['buildings_in_grid']:,}/{s['buildings']:,}"),
    ):
        table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    console.print(table)
    if s["residential"] and s["in_range"] + s["flagged_out_of_range"] < s["residential"]:
        fail(t("unflagged out of range"))
