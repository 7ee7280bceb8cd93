"""``gridgis info``: what a workspace holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from gridgis.cli.app import app
from gridgis.cli.common import DatabaseOpt, console, errors_to_stderr, get_store
from gridgis.cli.i18n import layer_name, t, value_name
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
    table = Table(title=t("workspace_title", where=store.location), title_justify="left")
    for col in ("layer", "rows", "CRS", "geometry", "bounds"):
        table.add_column(t(col), overflow="fold")
    for name, inf in sorted(infos.items()):
        b = ", ".join(f"{v:.4f}" for v in inf.bounds) if inf.bounds else ""
        table.add_row(
            layer_name(name), f"{inf.rows:,}", inf.crs or "-", inf.geometry_type or "table", b
        )
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
                parts = ", ".join(f"{value_name(layer, fld, k)} {v:,}" for k, v in counts.items())
                console.print(f"  {layer_name(layer)} by {fld}: {parts}")
    for line in division_lines(store, infos):
        console.print(line)
    if "rejects" in infos and infos["rejects"].rows:
        console.print(
            f"  [yellow]{infos['rejects'].rows:,} rejected rows[/]: "
            f"see layer 'rejects' (source, layer, row, field, reason)"
        )


def division_name(code: object, stored: object = None) -> str:
    """A division's name for people: the stored name unless it is missing or only
    repeats the code (a generated label), then the national table's, then the code."""
    code = str(code)
    text = str(stored) if isinstance(stored, str) and stored.strip() else ""
    if text and code not in text:
        return text
    from gridgis import divisions

    official = divisions.name_of(code) if divisions.available() else None
    return official or text or code


def division_lines(store: Store, infos: dict) -> list[str]:
    """Streets by name (with code), and how many communities and grids each street and
    community holds, by name."""
    lines: list[str] = []
    names: dict[str, str] = {}
    for layer, key in (("streets", "street_code"), ("communities", "community_code")):
        if layer in infos and infos[layer].rows:
            frame = store.read(layer)
            if key in frame.columns:
                stored = frame["name"] if "name" in frame.columns else [None] * len(frame)
                names |= {
                    str(c): division_name(c, n) for c, n in zip(frame[key], stored, strict=True)
                }
    for layer, key, parent_len in (
        ("communities", "community_code", 9),
        ("grids", "grid_code", 12),
    ):
        if layer in infos and infos[layer].rows and names:
            frame = store.read(layer)
            if key in frame.columns:
                parents = frame[key].astype(str).str[:parent_len].value_counts()
                parts = ", ".join(
                    f"{names.get(p) or division_name(p)} ({p}) {n:,}" for p, n in parents.items()
                )
                lines.append(
                    f"  {layer} by {'street' if parent_len == 9 else 'community'}: {parts}"
                )
    return lines


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
