"""``gridgis map``: the three-level grid maps, coverage and lookup pages and public boards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridgis import workflows
from gridgis.cli.app import app
from gridgis.cli.common import (
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


@app.command("map")
def map_command(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the pages.")] = Path("maps"),
    basemap: Annotated[
        str,
        typer.Option(
            "--basemap",
            help="Base map: osm, tianditu (needs --tianditu-key), amap (GCJ-02: "
            "overlays are shifted to match), none (offline, no tiles).",
        ),
    ] = "none",
    tianditu_key: Annotated[
        str | None,
        typer.Option("--tianditu-key", envvar="TIANDITU_KEY", help="Tianditu API key (tk)."),
    ] = None,
    boards: Annotated[
        bool, typer.Option("--boards/--no-boards", help="Write one printable A4 board per grid.")
    ] = True,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write interactive maps: index (district), one page per street and per community,
    coverage, address/point lookup, and a printable public board per grid.

    Pages work offline (Leaflet is shipped and copied to OUT/static); only base-map tiles
    come from the network.

    Example: [bold]gridgis map --workspace out/demo.gpkg --out maps/ --basemap none[/]
    """
    from gridgis.maps import BASEMAPS

    if basemap not in BASEMAPS:
        fail(f"--basemap {basemap}: use one of {', '.join(BASEMAPS)}")
    if basemap == "tianditu" and not tianditu_key:
        fail("--basemap tianditu needs --tianditu-key KEY (or TIANDITU_KEY)")
    with open_workspace(workspace, database, rules, set_) as (store, settings), progress() as bar:
        site = workflows.make_map(
            store,
            settings,
            out,
            basemap=basemap,
            tianditu_key=tianditu_key,
            boards=boards,
            progress=lambda what: progress_callback(bar, what),
        ).detail
        for note in site.notes:
            console.print(f"  [yellow]{t('note')}[/] {note}")
        console.print(site.summary())
        console.print(f"open {site.index}")
