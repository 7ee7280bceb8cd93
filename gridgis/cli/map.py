"""``gridgis map``: the three-level grid maps, coverage and lookup pages and public boards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridgis.cli.app import app
from gridgis.cli.common import (
    DatabaseOpt,
    RulesOpt,
    SetOpt,
    WorkspaceOpt,
    console,
    fail,
    open_workspace,
    progress_of,
    read_present,
)
from gridgis.cli.demo import demo_step
from gridgis.standards import Settings
from gridgis.store import Store
from gridgis.store.base import Frame


def read_map_layers(store: Store) -> dict[str, Frame]:
    """The layers the maps draw, those the workspace has (see ``gridgis.maps.MAP_LAYERS``)."""
    from gridgis.maps import MAP_LAYERS

    return read_present(store, MAP_LAYERS)


def make_maps(
    store: Store,
    out: Path,
    settings: Settings,
    basemap: str = "none",
    tianditu_key: str | None = None,
    boards: bool = True,
    show_progress: bool = True,
):
    """Read a workspace and write its map site; returns the :class:`~gridgis.maps.MapSite`."""
    from gridgis.cli.export import grids_written_at
    from gridgis.maps import write_maps

    layers = read_map_layers(store)
    city = str(store.meta().get("city", ""))
    with progress_of("writing map pages", show=show_progress) as callback:
        return write_maps(
            layers,
            out,
            basemap=basemap,
            tianditu_key=tianditu_key,
            city=city,
            settings=settings,
            boards=boards,
            progress=callback,
            board_date=grids_written_at(store),
        )


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
    with open_workspace(workspace, database, rules, set_) as (store, settings):
        site = make_maps(store, out, settings, basemap, tianditu_key, boards)
        for note in site.notes:
            console.print(f"  [yellow]note:[/] {note}")
        console.print(site.summary())
        console.print(f"open {site.index}")


@demo_step("Maps (index, streets, communities, coverage, lookup, boards)")
def demo_maps(store: Store, settings: Settings, out_dir: Path) -> str:
    """Demo step: write the map site under ``<out>/maps`` (offline, no base map)."""
    site = make_maps(store, out_dir / "maps", settings, "none", None, True, show_progress=False)
    return f"{site.summary()}; open {site.index}"
