"""``gridgis info``: what a workspace holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from gridgis.cli.app import app
from gridgis.cli.common import DatabaseOpt, console, errors_to_stderr, get_store
from gridgis.store import Store

#: Fields whose value counts are shown under a layer.
BREAKDOWN = {
    "roads": "road_class",
    "facilities": "category",
    "buildings": "use",
    "green_spaces": "kind",
    "institutions": "kind",
    "staff": "role",
    "grids": "kind",
    "rejects": "layer",
    "grid_findings": "check",
    "assign_rejects": "reason",
}


def exact_sum(values: pd.Series) -> int:
    """The sum of whole numbers in Python integers (no int64 wrap-around, whatever a
    workspace written by an older version holds)."""
    return sum(int(v) for v in values.to_numpy(dtype=object))


def print_summary(store: Store) -> None:
    """Print layers, counts, CRS, bounds and breakdowns of a workspace."""
    meta = store.meta()
    infos = store.info()
    table = Table(title=f"Workspace {store.location}", title_justify="left")
    for col in ("layer", "rows", "CRS", "geometry", "bounds (lon/lat)"):
        table.add_column(col)
    for name, inf in sorted(infos.items()):
        b = ", ".join(f"{v:.4f}" for v in inf.bounds) if inf.bounds else ""
        table.add_row(name, f"{inf.rows:,}", inf.crs or "-", inf.geometry_type or "table", b)
    console.print(table)
    for key in ("synthetic", "city", "computed_crs", "schema_version"):
        if key in meta:
            console.print(f"  {key}: {meta[key]}")
    if "buildings" in infos:
        b = store.read("buildings")
        hh = pd.to_numeric(b["households"], errors="coerce").fillna(0)
        est = b["households_estimated"].fillna(False).astype(bool).to_numpy()
        console.print(
            f"  buildings: {len(b):,}; households {exact_sum(hh):,} "
            f"({exact_sum(hh[est]):,} estimated in {int(est.sum()):,} buildings, "
            f"flagged households_estimated)"
        )
    for layer, fld in BREAKDOWN.items():
        if layer in infos and infos[layer].rows:
            frame = store.read(layer)
            if fld in frame.columns:
                counts = frame[fld].fillna("(none)").value_counts()
                parts = ", ".join(f"{k} {v:,}" for k, v in counts.items())
                console.print(f"  {layer} by {fld}: {parts}")
    if "rejects" in infos and infos["rejects"].rows:
        console.print(
            f"  [yellow]{infos['rejects'].rows:,} rejected rows[/]: "
            f"see layer 'rejects' (source, layer, row, field, reason)"
        )


@app.command()
def info(
    workspace: Annotated[Path | None, typer.Argument(help="Workspace .gpkg file.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Show a workspace: layers, counts, CRS, bounds, breakdowns and rejects.

    Example: [bold]gridgis info out/demo.gpkg[/]
    """
    with errors_to_stderr():
        store = get_store(workspace, database, must_exist=True)
        print_summary(store)
