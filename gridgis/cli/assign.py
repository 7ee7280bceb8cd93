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
) -> None:
    """Assign buildings, facilities, institutions, addresses and staff to grids.

    Points go to the grid containing them, polygons to the grid holding most of their area (grid_share kept below 90%); staff naming an unknown grid_code are rejected into layer assign_rejects. Grids get facilities_<category> counts, grid_head, grid_workers. All layers are written in one atomic step; re-running gives the same result.

    Example: [bold]gridgis assign --workspace out/demo.gpkg[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings), progress() as bar:
        job = workflows.assign(
            store, settings, grids=grids, progress=lambda what: progress_callback(bar, what)
        )
    result = job.detail
    out = job.written

    table = Table(
        title=f"Assignment to {len(result.grids):,} grids ({result.crs})", title_justify="left"
    )
    for col in ("layer", "rows", "in a grid", "split (grid_share kept)"):
        table.add_column(col, justify="right" if col != "layer" else "left")
    for name in ("buildings", "facilities", "institutions", "addresses", "staff"):
        frame = getattr(result, name)
        if frame is None:
            continue
        in_grid = int(frame["grid_code"].notna().sum())
        split = int(frame["grid_share"].notna().sum()) if "grid_share" in frame else 0
        table.add_row(name, f"{len(frame):,}", f"{in_grid:,}", f"{split:,}")
    console.print(table)
    n_rej = len(result.assign_rejects)
    if n_rej:
        err_console.print(
            f"[yellow]{n_rej} staff rows rejected[/] (unknown grid_code): "
            f"see layer 'assign_rejects'"
        )
    for note in result.notes:
        console.print(f"  {note}")
    hh = result.grids.get("facilities_total")
    if hh is not None and len(hh):
        console.print(
            f"  facilities per grid: mean {float(np.mean(hh)):.1f}; "
            f"grids with a grid_head: {int(result.grids['grid_head'].notna().sum()):,}"
        )
    console.print(f"Wrote {', '.join(out)} to {store.location}")
