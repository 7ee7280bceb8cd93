"""``gridgis assign``: put every building, facility, institution, address and staff member
into its community and grid."""

from __future__ import annotations

from typing import Annotated

import numpy as np
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
    err_console,
    open_workspace,
    progress,
    progress_callback,
)
from gridgis.cli.i18n import layer_name, t


@app.command()
def assign(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    grids: Annotated[
        str,
        typer.Option("--grids", help="Layer holding the grid polygons (with a unique grid_code)."),
    ] = "grids",
    rules: RulesOpt = None,
    set_: SetOpt = None,
    cluster: ClusterOpt = None,
) -> None:
    """Assign buildings, facilities, institutions, addresses and staff to grids.

    Points go to the grid containing them, polygons to the grid holding most of their area (grid_share kept below 90%); staff naming an unknown grid_code are rejected into layer assign_rejects. Grids get facilities_<category> counts, grid_head, grid_workers. All layers are written in one atomic step; re-running gives the same result.

    Example: [bold]gridgis assign --workspace out/demo.gpkg[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings), progress() as bar:
        job = workflows.assign(
            store,
            settings,
            grids=grids,
            progress=lambda what: progress_callback(bar, what),
            cluster=cluster,
        )
    result = job.detail
    out = job.written

    table = Table(
        title=t("assignment_title", n=f"{len(result.grids):,}", crs=result.crs),
        title_justify="left",
    )
    for col in ("layer", "rows", "in a grid", "split"):
        table.add_column(t(col), justify="right" if col != "layer" else "left")
    for name in ("buildings", "facilities", "institutions", "addresses", "staff"):
        frame = getattr(result, name)
        if frame is None:
            continue
        in_grid = int(frame["grid_code"].notna().sum())
        split = int(frame["grid_share"].notna().sum()) if "grid_share" in frame else 0
        table.add_row(layer_name(name), f"{len(frame):,}", f"{in_grid:,}", f"{split:,}")
    console.print(table)
    n_rej = len(result.assign_rejects)
    if n_rej:
        err_console.print(f"[yellow]{t('staff rejected', n=n_rej)}[/]")
    for note in result.notes:
        console.print(f"  {note}")
    hh = result.grids.get("facilities_total")
    if hh is not None and len(hh):
        heads = int(result.grids["grid_head"].notna().sum())
        console.print("  " + t("facilities per grid", mean=float(np.mean(hh)), heads=heads))
    console.print(t("wrote_to", layers=", ".join(out), where=store.location))
